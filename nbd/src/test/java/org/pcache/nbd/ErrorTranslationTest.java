package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;
import org.pcache.backing.BackingIoException;

/** Which NBD error a failed operation is answered with. */
class ErrorTranslationTest {

    @Test
    void explicitCodesPassThroughEvenWhenWrapped() {
        Throwable failure = new CompletionException(new NbdErrorException(NbdError.ENOSPC, "full"));
        assertThat(ErrorTranslation.of(failure, 0)).isEqualTo(NbdError.ENOSPC);
    }

    @Test
    void enotsupNarrowsToEinvalWithoutFastZero() {
        NbdErrorException notSupported = new NbdErrorException(NbdError.ENOTSUP, "slow");
        assertThat(ErrorTranslation.of(notSupported, NbdProtocol.CMD_FLAG_FAST_ZERO)).isEqualTo(NbdError.ENOTSUP);
        assertThat(ErrorTranslation.of(notSupported, 0)).isEqualTo(NbdError.EINVAL);
        assertThat(ErrorTranslation.of(new UnsupportedOperationException(), 0)).isEqualTo(NbdError.EINVAL);
    }

    @Test
    void eoverflowNarrowsToEinvalWithoutDf() {
        NbdErrorException overflow = new NbdErrorException(NbdError.EOVERFLOW, "big");
        assertThat(ErrorTranslation.of(overflow, NbdProtocol.CMD_FLAG_DF)).isEqualTo(NbdError.EOVERFLOW);
        assertThat(ErrorTranslation.of(overflow, 0)).isEqualTo(NbdError.EINVAL);
    }

    @Test
    void commonFailuresMapToTheirCodes() {
        assertThat(ErrorTranslation.of(new IOException("disk"), 0)).isEqualTo(NbdError.EIO);
        assertThat(ErrorTranslation.of(new IllegalArgumentException(), 0)).isEqualTo(NbdError.EINVAL);
        assertThat(ErrorTranslation.of(new IllegalStateException(), 0)).isEqualTo(NbdError.EIO);
        assertThat(ErrorTranslation.of(new BackingIoException(BackingIoException.Reason.STOPPED, "write", 0, 512, null,
                null), 0)).isEqualTo(NbdError.ESHUTDOWN);
    }
}
