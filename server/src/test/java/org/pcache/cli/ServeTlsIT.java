package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.nbd.ExternalTool;
import org.pcache.nbd.TestCertificates;

/**
 * {@code pcache serve --tls}: libnbd's nbdinfo and qemu's tls-creds-x509 reach pcache over TLS, plain clients are
 * refused under {@code require}, {@code --tls-verify-peer} admits only clients with a certificate of the CA, and
 * pcache's own client caches an nbdkit that requires TLS ({@code nbds+unix://} backing).
 */
class ServeTlsIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    static Path certificateRoot;
    private static Path certificates;
    /** The CA only: a client without a certificate of its own. */
    private static Path caOnly;

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;
    private NbdkitProcess nbdkit;

    @BeforeAll
    static void makeCertificates() throws Exception {
        certificates = TestCertificates.create(certificateRoot.resolve("pki"));
        caOnly = Files.createDirectories(certificateRoot.resolve("ca-only"));
        Files.copy(certificates.resolve("ca-cert.pem"), caOnly.resolve("ca-cert.pem"));
    }

    @BeforeEach
    void files() throws Exception {
        ExternalTool.require("nbdinfo");
        files = new ServeFiles(dir);
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        if (nbdkit != null) {
            nbdkit.close();
        }
        if (files != null) {
            files.close();
        }
    }

    @Test
    void nbdinfoAndQemuReachPcacheOverTls() throws Exception {
        ExternalTool.require("qemu-io");
        server = ServeProcess.start(dir, files.serve("64M", "--tls", "require", "--tls-certificates",
                certificates.toString()));
        assertThat(server.uri()).as("the ready line names the URI a client must use").startsWith("nbds://");
        String info = nbdinfo(server.uri(), certificates).assertSuccess().stdout();
        assertThat(info).contains("with TLS").contains("export-size: " + (64L << 20));
        int port = URI.create(server.uri()).getPort();
        String qemu = ExternalTool.run(TIMEOUT, "qemu-io",
                "--object", "tls-creds-x509,id=tls0,dir=" + certificates + ",endpoint=client",
                "--image-opts", "driver=nbd,host=127.0.0.1,port=" + port + ",tls-creds=tls0",
                "-c", "write -P 0x5c 1M 3M", "-c", "read -P 0x5c 1M 3M", "-c", "flush").assertSuccess().stdout();
        assertThat(qemu).doesNotContain("Pattern verification failed").contains("read 3145728/3145728");
        String image = ExternalTool.run(TIMEOUT, "qemu-img", "info",
                "--object", "tls-creds-x509,id=tls0,dir=" + certificates + ",endpoint=client",
                "--image-opts", "driver=nbd,host=127.0.0.1,port=" + port + ",tls-creds=tls0")
                .assertSuccess().stdout();
        assertThat(image).contains("virtual size: 64 MiB");
    }

    @Test
    void requireRefusesPlainClientsAndGoesOnServingTlsOnes() throws Exception {
        server = ServeProcess.start(dir, files.serve("64M", "--tls", "require", "--tls-certificates",
                certificates.toString()));
        String plain = server.uri().replace("nbds://", "nbd://");
        ExternalTool.Result refused = ExternalTool.run(TIMEOUT, "nbdinfo", plain);
        assertThat(refused.exit()).as("nbdinfo %s: %s", plain, refused.stderr()).isNotZero();
        String plainUnix = server.uris().get(1).replace("nbds+unix:", "nbd+unix:");
        assertThat(plainUnix).startsWith("nbd+unix:");
        ExternalTool.Result unixRefused = ExternalTool.run(TIMEOUT, "nbdinfo", plainUnix);
        assertThat(unixRefused.exit()).as("plain unix socket: %s", unixRefused.stderr()).isNotZero();
        nbdinfo(server.uri(), certificates).assertSuccess();
        assertThat(server.isAlive()).isTrue();
    }

    @Test
    void onServesPlainAndTlsClients() throws Exception {
        server = ServeProcess.start(dir, files.serve("64M", "--tls", "on", "--tls-certificates",
                certificates.toString()));
        assertThat(ExternalTool.run(TIMEOUT, "nbdinfo", server.uri()).assertSuccess().stdout())
                .contains("without TLS");
        assertThat(nbdinfo(server.uri().replace("nbd://", "nbds://"), certificates).assertSuccess().stdout())
                .contains("with TLS");
    }

    @Test
    void verifyPeerAdmitsOnlyClientsWithACertificate() throws Exception {
        server = ServeProcess.start(dir, files.serve("64M", "--tls", "require", "--tls-certificates",
                certificates.toString(), "--tls-verify-peer"));
        nbdinfo(server.uri(), certificates).assertSuccess();
        ExternalTool.Result anonymous = nbdinfo(server.uri(), caOnly);
        assertThat(anonymous.exit()).as("a client without a certificate: %s", anonymous.stderr()).isNotZero();
        assertThat(server.stderr()).contains("TLS handshake failed");
    }

    @Test
    void cachesAnNbdkitThatRequiresTls() throws Exception {
        ExternalTool.require("qemu-io");
        nbdkit = NbdkitProcess.start(dir.resolve("nbdkit.log"), "--tls=require",
                "--tls-certificates=" + certificates, "memory", "64M");
        String backing = nbdkit.uri().replace("nbd+unix:", "nbds+unix:");
        ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--cache-size", ServeFiles.CACHE_SIZE,
                "--backing", nbdkit.uri(), "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN)
                .assertRefused(1, "cannot connect to backing");
        server = ServeProcess.start(dir, "serve", "--cache", files.cache.toString(), "--cache-size",
                ServeFiles.CACHE_SIZE, "--backing", backing, "--backing-tls-certificates", certificates.toString(),
                "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN);
        String out = ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", "-t", "none", server.uri(),
                "-c", "write -P 0x71 0 2M", "-c", "flush", "-c", "read -P 0x71 0 2M").assertSuccess().stdout();
        assertThat(out).doesNotContain("Pattern verification failed");
        assertThat(ExternalTool.run(TIMEOUT, "nbdinfo", "--size", server.uri()).assertSuccess().stdout().trim())
                .isEqualTo(Long.toString(64L << 20));
    }

    @Test
    void tlsOptionsThatDoNotGoTogetherAreUsageErrors() throws Exception {
        ServeProcess.run(dir, files.serve("64M", "--tls", "on")).assertRefused(2, "--tls-certificates");
        ServeProcess.run(dir, files.serve("64M", "--tls-certificates", certificates.toString()))
                .assertRefused(2, "needs --tls on or --tls require");
        ServeProcess.run(dir, files.serve("64M", "--tls", "maybe")).assertRefused(2, "expected off, on or require");
        ServeProcess.run(dir, files.serve("64M", "--tls", "on", "--tls-certificates", caOnly.toString()))
                .assertRefused(1, "server-cert.pem");
    }

    private static ExternalTool.Result nbdinfo(String uri, Path credentials) throws Exception {
        return ExternalTool.run(TIMEOUT, "nbdinfo", uri + "?tls-certificates=" + credentials);
    }
}
