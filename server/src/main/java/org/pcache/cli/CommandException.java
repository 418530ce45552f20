package org.pcache.cli;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/**
 * Why a pcache command could not do its work, as the one line the user reads: what failed, where, and the reason.
 * The cause, when there is one, is kept for {@code --debug}. {@link PcacheCommand} prints the line and exits with
 * {@link #exitStatus()}: {@link PcacheCommand#FAILURE} unless the image itself is corrupt
 * ({@link PcacheCommand#CORRUPT}).
 */
final class CommandException extends Exception {

    private static final long serialVersionUID = 1L;

    private final int exitStatus;

    CommandException(String message) {
        this(message, null);
    }

    CommandException(String message, Throwable cause) {
        this(message, cause, PcacheCommand.FAILURE);
    }

    private CommandException(String message, Throwable cause, int exitStatus) {
        super(message, cause);
        this.exitStatus = exitStatus;
    }

    /** A cache image that fails validation: exit status {@link PcacheCommand#CORRUPT}. */
    static CommandException corrupt(String message, Throwable cause) {
        return new CommandException(message, cause, PcacheCommand.CORRUPT);
    }

    /** The exit status the command ends with. */
    int exitStatus() {
        return exitStatus;
    }

    /** "{@code what}: {@code reason}", with the reason of a file system error spelt as the shell would. */
    static CommandException of(String what, IOException cause) {
        return new CommandException(what + ": " + reason(cause), cause);
    }

    /**
     * The reason an I/O error gives, in words: the JDK's file system exceptions carry only the path in their
     * message, so the kind of exception is the reason.
     */
    static String reason(IOException cause) {
        if (cause instanceof FileSystemException fileSystem) {
            String reason = switch (fileSystem) {
                case AccessDeniedException e -> "permission denied";
                case NoSuchFileException e -> "no such file or directory";
                case FileAlreadyExistsException e -> "a file is in the way";
                case NotDirectoryException e -> "not a directory";
                default -> fileSystem.getReason();
            };
            String file = fileSystem.getFile();
            if (reason == null) {
                reason = "failed";
            }
            return file == null ? reason : reason + " (" + file + ")";
        }
        return cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
    }
}
