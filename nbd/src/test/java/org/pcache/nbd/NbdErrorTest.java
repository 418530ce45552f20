package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;
import org.pcache.backing.BackingIoException;

class NbdErrorTest {

    @Test
    void explicitCodesPassThroughEvenWhenWrapped() {
        Throwable failure = new CompletionException(new NbdErrorException(NbdError.ENOSPC, "full"));
        assertThat(NbdError.of(failure, 0)).isEqualTo(NbdError.ENOSPC);
    }

    @Test
    void enotsupNarrowsToEinvalWithoutFastZero() {
        NbdErrorException notSupported = new NbdErrorException(NbdError.ENOTSUP, "slow");
        assertThat(NbdError.of(notSupported, NbdProtocol.CMD_FLAG_FAST_ZERO)).isEqualTo(NbdError.ENOTSUP);
        assertThat(NbdError.of(notSupported, 0)).isEqualTo(NbdError.EINVAL);
        assertThat(NbdError.of(new UnsupportedOperationException(), 0)).isEqualTo(NbdError.EINVAL);
    }

    @Test
    void eoverflowNarrowsToEinvalWithoutDf() {
        NbdErrorException overflow = new NbdErrorException(NbdError.EOVERFLOW, "big");
        assertThat(NbdError.of(overflow, NbdProtocol.CMD_FLAG_DF)).isEqualTo(NbdError.EOVERFLOW);
        assertThat(NbdError.of(overflow, 0)).isEqualTo(NbdError.EINVAL);
    }

    @Test
    void commonFailuresMapToTheirCodes() {
        assertThat(NbdError.of(new IOException("disk"), 0)).isEqualTo(NbdError.EIO);
        assertThat(NbdError.of(new IllegalArgumentException(), 0)).isEqualTo(NbdError.EINVAL);
        assertThat(NbdError.of(new IllegalStateException(), 0)).isEqualTo(NbdError.EIO);
        assertThat(NbdError.of(new BackingIoException(BackingIoException.Reason.STOPPED, "write", 0, 512, null,
                null), 0)).isEqualTo(NbdError.ESHUTDOWN);
    }

    @Test
    void unknownWireCodesDecodeAsEinval() {
        assertThat(NbdError.decode(28)).isEqualTo(NbdError.ENOSPC);
        assertThat(NbdError.decode(9999)).isEqualTo(NbdError.EINVAL);
    }
}
