package org.pcache.backing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What Linux tells about a block device special file: whether a path is one, and its size from sysfs
 * ({@code /sys/dev/block/<major>:<minor>/size}, in 512-byte sectors). Needed because {@code FileChannel.size()} is
 * 0 for a block device (it reports st_size). Going through the device number rather than the name also handles
 * {@code /dev/mapper/*} and {@code /dev/disk/by-id/*} symlinks.
 */
final class SysfsBlockDevice {

    static final Path SYS_DEV_BLOCK = Path.of("/sys/dev/block");
    /** sysfs reports sizes in these units whatever the device's logical block size. */
    static final int SYSFS_SECTOR_SIZE = 512;

    /** File-type bits of st_mode and the value for a block device (sys/stat.h S_IFMT, S_IFBLK). */
    private static final int S_IFMT = 0170000;
    private static final int S_IFBLK = 0060000;
    private static final int S_IFREG = 0100000;

    private SysfsBlockDevice() {
    }

    static boolean isBlockDevice(Path path) throws IOException {
        return fileType(path) == S_IFBLK;
    }

    static boolean isRegularFile(Path path) throws IOException {
        return fileType(path) == S_IFREG;
    }

    /** Size in bytes of the block device at {@code device}. */
    static long size(Path device) throws IOException {
        long rdev = (Long) Files.getAttribute(device, "unix:rdev");
        return size(SYS_DEV_BLOCK, major(rdev), minor(rdev));
    }

    /** Size in bytes of device {@code major:minor} as listed under {@code sysDevBlock}. */
    static long size(Path sysDevBlock, int major, int minor) throws IOException {
        Path sizeFile = sysDevBlock.resolve(major + ":" + minor).resolve("size");
        String text = Files.readString(sizeFile).trim();
        try {
            return Math.multiplyExact(Long.parseLong(text), SYSFS_SECTOR_SIZE);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IOException(sizeFile + ": expected a sector count, found '" + text + "'", e);
        }
    }

    /** Major number of a Linux dev_t (glibc gnu_dev_major). */
    static int major(long rdev) {
        return (int) (((rdev >>> 8) & 0xfffL) | ((rdev >>> 32) & 0xfffff000L));
    }

    /** Minor number of a Linux dev_t (glibc gnu_dev_minor). */
    static int minor(long rdev) {
        return (int) ((rdev & 0xffL) | ((rdev >>> 12) & 0xffffff00L));
    }

    private static int fileType(Path path) throws IOException {
        return (Integer) Files.getAttribute(path, "unix:mode") & S_IFMT;
    }
}
