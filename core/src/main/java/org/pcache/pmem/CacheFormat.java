package org.pcache.pmem;

/**
 * When opening a cache device may format it, that is write a new, empty cache over whatever the device holds.
 */
public enum CacheFormat {
    /**
     * Format only a device that holds no cache: a blank one (superblock magic 0) or one whose format never reached its
     * commit point (cache_info slot 0 still zero). A cache whose cache_info replicas are both damaged is refused with
     * {@link CacheInfoLostException}, never formatted over.
     */
    IF_BLANK,
    /**
     * Format whatever the device holds, a valid, damaged or mismatched cache alike. Its cached data, writes not yet
     * written back included, is lost.
     */
    ALWAYS
}
