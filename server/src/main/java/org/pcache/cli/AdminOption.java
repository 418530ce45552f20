package org.pcache.cli;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import org.pcache.admin.AdminClient;
import org.pcache.admin.AdminException;
import org.pcache.admin.AdminServer;
import picocli.CommandLine.Option;

/** {@code --admin HOST:PORT}: where the commands that talk to a running {@code pcache serve} find it. */
final class AdminOption {

    @Option(names = "--admin", paramLabel = "HOST:PORT", converter = ListenAddress.class,
            defaultValue = "127.0.0.1:" + AdminServer.DEFAULT_PORT,
            description = "Admin endpoint of the running pcache serve (default: ${DEFAULT-VALUE}).")
    private InetSocketAddress address;

    @Option(names = "--admin-token-file", paramLabel = "FILE",
            description = "File whose first line is the admin token the server requires (default: the environment "
                    + "variable " + AdminTokenSource.ENVIRONMENT + ", else none).")
    private Path tokenFile;

    /** A client of the endpoint, sending the token if one is configured; the caller closes it. */
    AdminClient client() throws CommandException {
        return new AdminClient(address, AdminTokenSource.resolve(tokenFile));
    }

    /** The one-line failure for an endpoint that could not be reached or refused. */
    static CommandException failure(AdminException e) {
        return new CommandException(e.getMessage(), e);
    }
}
