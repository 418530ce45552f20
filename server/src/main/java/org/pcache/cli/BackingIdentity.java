package org.pcache.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.pcache.nbd.NbdUri;

/**
 * What a cache records about the backing device it caches ({@code BackingIdentityOnMedia} in the cache's first
 * 4 KiB), so that a cache with dirty data is never attached to another device, whose data writeback would overwrite.
 * A file is known by its file system's device number and its inode number (a rename keeps them, another file at the
 * same path does not), a block device by the device number it names, and both by their size; an NBD export by its URI, export name and size. The path is recorded for the messages only.
 *
 * @param kind "file" or "nbd"
 * @param name the absolute path, or the URI
 * @param id   "DEV:INODE" for a file, "rdev N" for a block device, the export name for NBD
 * @param size the device's size in bytes
 */
record BackingIdentity(String kind, String name, String id, long size) {

    static final String FILE = "file";
    static final String NBD = "nbd";

    /** The identity of the backing device {@code spec} names, open with {@code size} bytes. */
    static BackingIdentity of(String spec, long size) throws CommandException {
        if (BackingSpec.isUri(spec)) {
            return new BackingIdentity(NBD, spec, NbdUri.parse(spec).exportName(), size);
        }
        Path path = Path.of(spec).toAbsolutePath().normalize();
        try {
            // A device node's own inode changes when /dev is rebuilt at boot; the device number it names does not.
            String id = Files.isRegularFile(path)
                    ? Files.getAttribute(path, "unix:dev") + ":" + Files.getAttribute(path, "unix:ino")
                    : "rdev " + Files.getAttribute(path, "unix:rdev");
            return new BackingIdentity(FILE, path.toString(), id, size);
        } catch (IOException e) {
            throw CommandException.of("cannot identify backing " + spec, e);
        } catch (UnsupportedOperationException e) {
            throw new CommandException("cannot identify backing " + spec + ": its file system has no inode numbers", e);
        }
    }

    /** The recorded text: one {@code key=value} line per field. */
    String text() {
        return "kind=" + kind + "\nname=" + name + "\nid=" + id + "\nsize=" + size + "\n";
    }

    /** The identity {@link #text} wrote, or empty when {@code text} is not one. */
    static Optional<BackingIdentity> parse(String text) {
        Map<String, String> fields = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            int equals = line.indexOf('=');
            if (equals > 0) {
                fields.put(line.substring(0, equals), line.substring(equals + 1));
            }
        }
        try {
            BackingIdentity identity = new BackingIdentity(fields.get("kind"), fields.get("name"), fields.get("id"),
                    Long.parseLong(fields.getOrDefault("size", "")));
            return identity.kind != null && identity.name != null && identity.id != null ? Optional.of(identity)
                    : Optional.empty();
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    /** Whether this and {@code other} name the same device: see the class comment. */
    boolean sameDevice(BackingIdentity other) {
        return kind.equals(other.kind) && id.equals(other.id) && size == other.size
                && (kind.equals(FILE) || name.equals(other.name));
    }

    @Override
    public String toString() {
        return kind.equals(FILE)
                ? "file " + name + " (device:inode " + id + ", " + size + " bytes)"
                : "NBD " + name + " (export '" + id + "', " + size + " bytes)";
    }
}
