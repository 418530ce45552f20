package org.pcache.cli;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/**
 * Why {@code pcache serve} could not start, as the one line the user reads: what failed, where, and the reason.
 * The cause, when there is one, is kept for {@code --debug}.
 */
final class ServeException extends Exception {

    private static final long serialVersionUID = 1L;

    ServeException(String message) {
        super(message);
    }

    ServeException(String message, Throwable cause) {
        super(message, cause);
    }

    /** "{@code what}: {@code reason}", with the reason of a file system error spelt as the shell would. */
    static ServeException of(String what, IOException cause) {
        return new ServeException(what + ": " + reason(cause), cause);
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
