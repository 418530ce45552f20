package org.pcache.cli;

import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.pcache.admin.AdminJson;
import org.pcache.cache.CacheImage;
import org.pcache.pmem.CacheInfo;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code pcache dump}: every structure of a cache image, offline and read-only, in log order: superblock, cache_info,
 * the tails, the segments, then the ksets of the log with their keys, then the key head where the log ends. Text is
 * one record per line with {@code name=value} fields, the names the logs use; {@code --json} is one JSON document,
 * written as the log is walked, so a large cache never sits in memory.
 *
 * <p>A kset or key that fails validation ends the walk: what came before it is printed, then the error (in the JSON
 * as {@code "error"}), and the exit status is 3.
 */
@Command(name = "dump",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {"Print every structure of a cache image offline: superblock, cache_info, key_tail, dirty_tail, "
                + "segments, the ksets of the log from key_tail with their keys, and key_head. Never writes; refuses a "
                + "cache a server is running on."},
        footer = {"", "Exit status: 0 printed, 1 the file cannot be read or is in use, 2 wrong command line, 3 the "
                + "image is corrupt (printed up to the problem)."})
final class DumpCommand implements Callable<Integer> {

    @Option(names = "--cache", paramLabel = "FILE", required = true, description = "The cache image.")
    private Path cacheFile;

    @Option(names = "--json", description = "Print one JSON document instead of text lines.")
    private boolean json;

    @Override
    public Integer call() throws CommandException {
        // System.out, not picocli's writer: a dump can be large, and a PrintStream buffers and reports errors itself.
        PrintStream out = System.out;
        try (CacheImageFile file = CacheImageFile.open(cacheFile)) {
            CacheImage image;
            try {
                image = file.inspect(Long.MAX_VALUE);
            } catch (CorruptMediaException e) {
                throw file.corrupt(e);
            }
            CorruptMediaException problem = json ? json(image, file.backingIdentity(), out)
                    : text(image, file.backingIdentity(), out);
            out.flush();
            if (problem != null) {
                throw file.corrupt(problem);
            }
        }
        return 0;
    }

    /** Writes the text dump; returns the problem that ended the walk, or null. */
    private static CorruptMediaException text(CacheImage image, String backing, PrintStream out) {
        CacheInfo info = image.cacheInfo();
        out.println("superblock flags=0x" + Integer.toHexString(image.superblockFlags()) + " seg_num="
                + image.physicalSegmentCount());
        out.println("cache_info seg_id=" + info.segId() + " n_segs=" + info.nSegs() + " flags=0x"
                + Integer.toHexString(info.flags()) + " data_crc=" + info.dataCrc() + " init_done=" + info.initDone()
                + " cache_mode=" + info.cacheMode() + " gc_percent=" + info.gcPercent());
        out.println("key_tail " + pos(image.keyTail()));
        out.println("dirty_tail " + pos(image.dirtyTail()));
        out.println("backing_identity " + backing);
        for (CacheImage.SegmentSummary segment : image.segments()) {
            out.println("segment seg=" + segment.seg() + " phys=" + segment.physicalId() + " gen=" + segment.gen());
        }
        try {
            CachePos head = image.walk(kset -> {
                if (kset.last()) {
                    out.println("kset " + pos(kset.pos()) + " last next_seg=" + kset.next().seg());
                    return;
                }
                out.println("kset " + pos(kset.pos()) + " keys=" + kset.keys().size() + " dirty=" + kset.dirty());
                for (CacheImage.LoggedKey key : kset.keys()) {
                    if (key.seg() < 0) {
                        out.println("key off=" + key.off() + " len=" + key.len() + " kind="
                                + key.kind().name().toLowerCase(Locale.ROOT));
                        continue;
                    }
                    out.println("key off=" + key.off() + " len=" + key.len() + " clean=" + key.clean() + " seg="
                            + key.seg() + " seg_off=" + key.segOff() + " gen=" + key.gen() + " data_crc=0x"
                            + Integer.toHexString(key.dataCrc()) + " stale=" + key.stale());
                }
            });
            out.println("key_head " + pos(head));
            return null;
        } catch (CorruptMediaException e) {
            out.println("error " + e.getMessage());
            return e;
        }
    }

    /** Writes the JSON dump, streaming the ksets; returns the problem that ended the walk, or null. */
    private static CorruptMediaException json(CacheImage image, String backing, PrintStream out)
            throws CommandException {
        try (JsonGenerator json = AdminJson.MAPPER.createGenerator(out)) {
            json.useDefaultPrettyPrinter();
            json.writeStartObject();
            json.writeObjectFieldStart("superblock");
            json.writeNumberField("flags", image.superblockFlags());
            json.writeNumberField("seg_num", image.physicalSegmentCount());
            json.writeEndObject();
            json.writeObjectField("cache_info", image.cacheInfo());
            json.writeStringField("backing_identity", backing);
            json.writeObjectField("key_tail", image.keyTail());
            json.writeObjectField("dirty_tail", image.dirtyTail());
            json.writeObjectField("segments", image.segments());
            json.writeArrayFieldStart("ksets");
            CorruptMediaException problem = null;
            try {
                CachePos head = image.walk(kset -> write(json, kset));
                json.writeEndArray();
                json.writeObjectField("key_head", head);
            } catch (CorruptMediaException e) {
                json.writeEndArray();
                json.writeStringField("error", e.getMessage());
                problem = e;
            }
            json.writeEndObject();
            json.flush();
            out.println();
            return problem;
        } catch (IOException | UncheckedIOException e) {
            throw new CommandException("cannot write the dump: " + e.getMessage(), e);
        }
    }

    private static void write(JsonGenerator json, CacheImage.LoggedKset kset) {
        try {
            json.writeObject(kset);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String pos(CachePos pos) {
        return "seg=" + pos.seg() + " off=" + pos.off();
    }
}
