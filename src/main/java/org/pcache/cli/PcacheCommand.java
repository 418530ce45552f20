package org.pcache.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code pcache} command line: one subcommand per operation. */
@Command(name = "pcache",
        mixinStandardHelpOptions = true,
        versionProvider = PcacheCommand.Version.class,
        description = "A crash-persistent write-back cache on a persistent memory region, served over NBD "
                + "(dm-pcache in userspace).")
public final class PcacheCommand implements Runnable {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new PcacheCommand()).execute(args));
    }

    /** Reads the version from the jar manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String version = PcacheCommand.class.getPackage().getImplementationVersion();
            return new String[] {"pcache " + (version == null ? "(development build)" : version)};
        }
    }
}
