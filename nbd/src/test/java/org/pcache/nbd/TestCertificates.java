package org.pcache.nbd;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Makes an X.509 credentials directory with openssl, in nbdkit's layout: a CA of its own ({@code ca-cert.pem},
 * {@code ca-key.pem}), a server certificate for localhost and 127.0.0.1 with a PKCS#1 RSA key
 * ({@code server-cert.pem}, {@code server-key.pem}, as certtool writes them) and a client certificate with a PKCS#8
 * EC key ({@code client-cert.pem}, {@code client-key.pem}, as openssl 3 writes them). Each call makes a new CA, so
 * two directories do not trust each other.
 */
public final class TestCertificates {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    private TestCertificates() {
    }

    /** Creates {@code directory} (if needed) and fills it; skips the test when openssl is not installed. */
    public static Path create(Path directory) throws IOException, InterruptedException {
        ExternalTool.require("openssl");
        Files.createDirectories(directory);
        String dir = directory.toAbsolutePath().toString();
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/ca-key.pem",
                "-out", dir + "/ca-cert.pem", "-days", "2", "-subj", "/CN=pcache test CA");
        openssl("genrsa", "-traditional", "-out", dir + "/server-key.pem", "2048");
        sign(dir, "server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                + "extendedKeyUsage=serverAuth\n");
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                dir + "/client-key.pem");
        sign(dir, "client", "/CN=pcache test client", "extendedKeyUsage=clientAuth\n");
        return directory;
    }

    private static void sign(String dir, String name, String subject, String extensions)
            throws IOException, InterruptedException {
        Path extensionFile = Path.of(dir, name + ".ext");
        Files.writeString(extensionFile, extensions);
        openssl("req", "-new", "-key", dir + "/" + name + "-key.pem", "-subj", subject, "-out",
                dir + "/" + name + ".csr");
        openssl("x509", "-req", "-in", dir + "/" + name + ".csr", "-CA", dir + "/ca-cert.pem", "-CAkey",
                dir + "/ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", extensionFile.toString(),
                "-out", dir + "/" + name + "-cert.pem");
    }

    private static void openssl(String... arguments) throws IOException, InterruptedException {
        String[] command = new String[arguments.length + 1];
        command[0] = "openssl";
        System.arraycopy(arguments, 0, command, 1, arguments.length);
        ExternalTool.run(TIMEOUT, command).assertSuccess();
    }
}
