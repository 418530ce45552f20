package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class NbdErrorTest {

    @Test
    void unknownWireCodesDecodeAsEinval() {
        assertThat(NbdError.decode(28)).isEqualTo(NbdError.ENOSPC);
        assertThat(NbdError.decode(9999)).isEqualTo(NbdError.EINVAL);
    }
}
