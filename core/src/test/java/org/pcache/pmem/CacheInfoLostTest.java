package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A cache whose two cache_info copies are both bad is refused, named copy by copy, and left as it was; one good copy
 * is enough to open; only {@link CacheFormat#ALWAYS} formats over it, and a blank device still formats without it.
 */
@Timeout(30)
class CacheInfoLostTest {
    private static final int SEGS = 31;
    private static final long SLOT_0 = CacheDeviceLayout.CACHE_INFO_OFFSET;
    private static final long SLOT_1 = CacheDeviceLayout.CACHE_INFO_OFFSET + CacheInfoOnMedia.SLOT_STRIDE;
    private static final CacheDevice.Options ALWAYS = new CacheDevice.Options(false, 0, 70, CacheFormat.ALWAYS);

    private final CrashSimPmemRegion region = new CrashSimPmemRegion(CacheDeviceLayout.MIN_SIZE);
    private final OnMediaEditor media = new OnMediaEditor(region);

    @BeforeEach
    void formatAnOldCache() throws Exception {
        CacheDevice device = open();
        device.writeCacheInfo(device.cacheInfo().withGcPercent(40));
        device.writeKeyTail(new CachePos(3, 64));
        device.writeDirtyTail(new CachePos(3, 64));
    }

    @AfterEach
    void closeRegion() {
        region.close();
    }

    private CacheDevice open() throws Exception {
        return CacheDevice.open(region, CacheDevice.Options.defaults());
    }

    /** Opens the image without the format option: refused, and byte-for-byte untouched. */
    private CacheInfoLostException refused() {
        byte[] before = OnMediaEditor.metadata(region, SEGS);
        long stores = region.storeCount();
        CacheInfoLostException[] caught = new CacheInfoLostException[1];

        assertThatThrownBy(this::open).isInstanceOfSatisfying(CacheInfoLostException.class, e -> caught[0] = e);

        assertThat(region.storeCount()).as("stores").isEqualTo(stores);
        assertThat(OnMediaEditor.metadata(region, SEGS)).as("metadata bytes").isEqualTo(before);
        return caught[0];
    }

    @Test
    void bothCopiesWithABadCrcAreRefusedNamingEach() {
        media.flipByte(SLOT_0 + CacheInfoOnMedia.FLAGS_OFFSET);
        media.flipByte(SLOT_1 + CacheInfoOnMedia.N_SEGS_OFFSET);

        CacheInfoLostException e = refused();

        assertThat(e).isInstanceOf(CorruptMediaException.class);
        assertThat(e.record()).isEqualTo("cache_info");
        assertThat(e.copies()).extracting(CacheInfoLostException.Copy::slot).containsExactly(0, 1);
        assertThat(e.copies()).extracting(CacheInfoLostException.Copy::offset).containsExactly(SLOT_0, SLOT_1);
        assertThat(e.copies()).allSatisfy(copy -> assertThat(copy.problem()).startsWith("crc 0x"));
        assertThat(e.getMessage()).contains("copy 0 at offset " + SLOT_0).contains("copy 1 at offset " + SLOT_1)
                .contains(e.copies().get(0).problem()).contains(e.copies().get(1).problem()).contains("explicit format");
    }

    @Test
    void aZeroedSecondCopyBesideABadFirstOneIsRefused() {
        media.flipByte(SLOT_0 + CacheInfoOnMedia.SEG_ID_OFFSET);
        region.zero(SLOT_1, CacheInfoOnMedia.SIZE);
        region.persist(SLOT_1, CacheInfoOnMedia.SIZE);

        CacheInfoLostException e = refused();

        assertThat(e.copies().get(0).problem()).startsWith("crc 0x");
        assertThat(e.copies().get(1).problem()).isEqualTo("all zero");
    }

    @Test
    void eitherGoodCopyAloneOpensTheCache() throws Exception {
        for (long bad : new long[] {SLOT_0, SLOT_1}) {
            media.flipByte(bad + CacheInfoOnMedia.FLAGS_OFFSET);

            CacheDevice device = open();

            assertThat(device.formatted()).as("copy at %d bad", bad).isFalse();
            assertThat(device.keyTail()).isEqualTo(new CachePos(3, 64));
            media.flipByte(bad + CacheInfoOnMedia.FLAGS_OFFSET);
        }
    }

    @Test
    void theFormatOptionFormatsALostCache() throws Exception {
        media.flipByte(SLOT_0 + CacheInfoOnMedia.FLAGS_OFFSET);
        media.flipByte(SLOT_1 + CacheInfoOnMedia.FLAGS_OFFSET);

        CacheDevice device = CacheDevice.open(region, ALWAYS);

        assertThat(device.formatted()).isTrue();
        assertThat(device.keyTail()).isEqualTo(new CachePos(0, 0));
        assertThat(device.cacheInfo().gcPercent()).isEqualTo(70);
        CacheDevice reopened = open();
        assertThat(reopened.formatted()).isFalse();
        assertThat(reopened.dirtyTail()).isEqualTo(new CachePos(0, 0));
    }

    @Test
    void theFormatOptionFormatsAValidCacheToo() throws Exception {
        CacheDevice device = CacheDevice.open(region, new CacheDevice.Options(true, 0, 20, CacheFormat.ALWAYS));

        assertThat(device.formatted()).isTrue();
        assertThat(device.cacheInfo()).isEqualTo(new CacheInfo(0, SEGS, true, true, 0, 20, 0));
        assertThat(device.keyTail()).isEqualTo(new CachePos(0, 0));
        assertThat(region.pendingLineCount()).isZero();
    }

    @Test
    void aBlankDeviceFormatsWithoutTheOption() throws Exception {
        try (CrashSimPmemRegion blank = new CrashSimPmemRegion(CacheDeviceLayout.MIN_SIZE)) {
            assertThat(CacheDevice.open(blank, CacheDevice.Options.defaults()).formatted()).isTrue();
        }
    }

    @Test
    void aFormatCutBeforeItsCommitPointFormatsAgainWithoutTheOption() throws Exception {
        // What a cut during format step 5 leaves: slot 0 still zero from step 1, slot 1 half written.
        region.zero(SLOT_0, CacheInfoOnMedia.SIZE);
        region.persist(SLOT_0, CacheInfoOnMedia.SIZE);
        media.flipByte(SLOT_1 + CacheInfoOnMedia.FLAGS_OFFSET);

        CacheDevice device = open();

        assertThat(device.formatted()).isTrue();
        assertThat(device.keyTail()).isEqualTo(new CachePos(0, 0));
    }
}
