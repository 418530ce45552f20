package org.pcache.nbd;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

/**
 * X.509 credentials for NBD over TLS, read from a directory with nbdkit's and qemu's file layout:
 * <table>
 *   <caption>credentials directory</caption>
 *   <tr><th>file</th><th>server</th><th>client</th></tr>
 *   <tr><td>{@value #CA_CERT}</td><td>with peer verification: the CA that signs client certificates</td>
 *       <td>required: the CA that signs the server's certificate</td></tr>
 *   <tr><td>{@value #SERVER_CERT}, {@value #SERVER_KEY}</td><td>required</td><td>-</td></tr>
 *   <tr><td>{@value #CLIENT_CERT}, {@value #CLIENT_KEY}</td><td>-</td><td>optional, both or neither: presented
 *       to a server that asks for a client certificate</td></tr>
 * </table>
 * Keys are unencrypted PEM, PKCS#8 or PKCS#1 ({@link PemFiles}). TLS 1.2 and 1.3 are offered, with the JDK's
 * default cipher suites. A client checks the server's certificate against the CA and the host name it connected to
 * (a unix socket has no host name, so only the CA is checked there).
 *
 * <p>Threading: immutable; engines may be made from any thread.
 */
public final class TlsCredentials {

    public static final String CA_CERT = "ca-cert.pem";
    public static final String SERVER_CERT = "server-cert.pem";
    public static final String SERVER_KEY = "server-key.pem";
    public static final String CLIENT_CERT = "client-cert.pem";
    public static final String CLIENT_KEY = "client-key.pem";

    private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};

    private final Path directory;
    private final SSLContext context;
    private final boolean verifyPeer;

    private TlsCredentials(Path directory, SSLContext context, boolean verifyPeer) {
        this.directory = directory;
        this.context = context;
        this.verifyPeer = verifyPeer;
    }

    /**
     * A server's credentials from {@code directory}; with {@code verifyPeer} every client must present a certificate
     * signed by {@value #CA_CERT}.
     */
    public static TlsCredentials server(Path directory, boolean verifyPeer) throws IOException {
        KeyManager[] keys = keyManagers(directory.resolve(SERVER_CERT), directory.resolve(SERVER_KEY));
        TrustManager[] trust = verifyPeer ? trustManagers(directory.resolve(CA_CERT)) : null;
        return new TlsCredentials(directory, context(keys, trust), verifyPeer);
    }

    /** A client's credentials from {@code directory}: the CA to check servers with, and an optional certificate. */
    public static TlsCredentials client(Path directory) throws IOException {
        Path certificate = directory.resolve(CLIENT_CERT);
        Path key = directory.resolve(CLIENT_KEY);
        if (Files.exists(certificate) != Files.exists(key)) {
            throw new IOException(directory + ": " + CLIENT_CERT + " and " + CLIENT_KEY
                    + " go together (found only one of them)");
        }
        KeyManager[] keys = Files.exists(certificate) ? keyManagers(certificate, key) : null;
        return new TlsCredentials(directory, context(keys, trustManagers(directory.resolve(CA_CERT))), true);
    }

    public Path directory() {
        return directory;
    }

    public boolean verifiesPeer() {
        return verifyPeer;
    }

    /** A server-mode engine for one connection. */
    SSLEngine serverEngine() {
        SSLEngine engine = context.createSSLEngine();
        engine.setUseClientMode(false);
        engine.setEnabledProtocols(PROTOCOLS);
        engine.setNeedClientAuth(verifyPeer);
        return engine;
    }

    /** A client-mode engine for a connection to {@code address}, checking the server's name when it has one. */
    SSLEngine clientEngine(SocketAddress address) {
        SSLEngine engine;
        SSLParameters parameters = context.getDefaultSSLParameters();
        if (address instanceof InetSocketAddress inet) {
            engine = context.createSSLEngine(inet.getHostString(), inet.getPort());
            parameters.setEndpointIdentificationAlgorithm("HTTPS");
        } else {
            engine = context.createSSLEngine();
        }
        parameters.setProtocols(PROTOCOLS);
        engine.setSSLParameters(parameters);
        engine.setUseClientMode(true);
        return engine;
    }

    private static KeyManager[] keyManagers(Path certificateFile, Path keyFile) throws IOException {
        List<X509Certificate> chain = PemFiles.certificates(certificateFile);
        PrivateKey key = PemFiles.privateKey(keyFile);
        String certified = chain.getFirst().getPublicKey().getAlgorithm();
        if (List.of("RSA", "EC").containsAll(List.of(key.getAlgorithm(), certified))
                && !key.getAlgorithm().equals(certified)) {
            throw new IOException(keyFile + " holds a " + key.getAlgorithm() + " key but " + certificateFile
                    + " certifies a " + certified + " key");
        }
        try {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            char[] password = new char[0];
            store.setKeyEntry("key", key, password, chain.toArray(X509Certificate[]::new));
            KeyManagerFactory factory = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            factory.init(store, password);
            return factory.getKeyManagers();
        } catch (GeneralSecurityException e) {
            throw new IOException(certificateFile + " with " + keyFile + ": " + e.getMessage(), e);
        }
    }

    private static TrustManager[] trustManagers(Path caFile) throws IOException {
        try {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            int i = 0;
            for (X509Certificate certificate : PemFiles.certificates(caFile)) {
                store.setCertificateEntry("ca-" + i++, certificate);
            }
            TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            factory.init(store);
            return factory.getTrustManagers();
        } catch (GeneralSecurityException e) {
            throw new IOException(caFile + ": " + e.getMessage(), e);
        }
    }

    private static SSLContext context(KeyManager[] keys, TrustManager[] trust) throws IOException {
        try {
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(keys, trust, null);
            return context;
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot set up TLS: " + e.getMessage(), e);
        }
    }
}
