package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class SysfsBlockDeviceTest {

    @TempDir
    Path sysDevBlock;

    @Test
    void decodesMajorAndMinorFromALinuxDeviceNumber() {
        assertThat(SysfsBlockDevice.major(makedev(8, 1))).isEqualTo(8);
        assertThat(SysfsBlockDevice.minor(makedev(8, 1))).isEqualTo(1);
        assertThat(SysfsBlockDevice.major(makedev(259, 300))).isEqualTo(259);
        assertThat(SysfsBlockDevice.minor(makedev(259, 300))).isEqualTo(300);
        assertThat(SysfsBlockDevice.major(makedev(5000, 1_000_000))).isEqualTo(5000);
        assertThat(SysfsBlockDevice.minor(makedev(5000, 1_000_000))).isEqualTo(1_000_000);
    }

    @Test
    void sizeIsTheSysfsSectorCountTimes512() throws Exception {
        Path entry = Files.createDirectory(sysDevBlock.resolve("259:3"));
        Files.writeString(entry.resolve("size"), "2097152\n");
        assertThat(SysfsBlockDevice.size(sysDevBlock, 259, 3)).isEqualTo(1L << 30);
    }

    @Test
    void aSizeThatIsNotANumberIsReportedWithTheFile() throws Exception {
        Path entry = Files.createDirectory(sysDevBlock.resolve("7:0"));
        Files.writeString(entry.resolve("size"), "lots\n");
        assertThatThrownBy(() -> SysfsBlockDevice.size(sysDevBlock, 7, 0)).isInstanceOf(IOException.class)
                .hasMessageContaining("7:0").hasMessageContaining("expected a sector count, found 'lots'");
    }

    @Test
    void tellsRegularFilesBlockDevicesAndOthersApart() throws Exception {
        Path file = Files.createFile(sysDevBlock.resolve("plain"));
        assertThat(SysfsBlockDevice.isRegularFile(file)).isTrue();
        assertThat(SysfsBlockDevice.isBlockDevice(file)).isFalse();
        assertThat(SysfsBlockDevice.isRegularFile(Path.of("/dev/null"))).isFalse();
        assertThat(SysfsBlockDevice.isBlockDevice(Path.of("/dev/null"))).isFalse();
    }

    /** glibc gnu_dev_makedev. */
    private static long makedev(long major, long minor) {
        return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xffL) << 12) | ((major & ~0xfffL) << 32);
    }
}
