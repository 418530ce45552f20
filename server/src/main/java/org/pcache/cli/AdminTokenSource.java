package org.pcache.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.pcache.admin.AdminToken;

/**
 * Where the admin token comes from, for the server and for the commands that talk to it: the file of
 * {@code --admin-token-file} (its first line), else the environment variable {@value #ENVIRONMENT}, else none. A file
 * keeps the token out of the process list and the shell history; the variable suits service managers.
 */
final class AdminTokenSource {

    static final String ENVIRONMENT = "PCACHE_ADMIN_TOKEN";

    private AdminTokenSource() {
    }

    /** The token {@code file} (may be null) or the environment names; a message never shows the token. */
    static Optional<AdminToken> resolve(Path file) throws CommandException {
        if (file != null) {
            String text;
            try {
                text = Files.readString(file, StandardCharsets.US_ASCII).lines().findFirst().orElse("");
            } catch (IOException e) {
                throw CommandException.of("cannot read --admin-token-file " + file, e);
            }
            return Optional.of(parse(text, "--admin-token-file " + file));
        }
        String variable = System.getenv(ENVIRONMENT);
        if (variable == null || variable.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(parse(variable, ENVIRONMENT));
    }

    private static AdminToken parse(String text, String where) throws CommandException {
        try {
            return AdminToken.of(text);
        } catch (IllegalArgumentException e) {
            throw new CommandException(where + ": " + e.getMessage());
        }
    }
}
