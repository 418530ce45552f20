package org.pcache.cli;

import ch.qos.logback.classic.Level;
import java.io.PrintWriter;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code pcache} command line: one subcommand per operation.
 *
 * <p>Logging: the command line, not the library, configures Logback, from {@link #LOGBACK_CONFIGURATION} (INFO and
 * up to stderr) unless {@code -Dlogback.configurationFile} names another file. The file is not at the root of the
 * class path, so programs that embed pcache as a library keep their own configuration.
 *
 * <p>Errors on the command line are one line on stderr and exit status 2; {@code --help} shows the usage.
 */
@Command(name = "pcache",
        mixinStandardHelpOptions = true,
        versionProvider = PcacheCommand.Version.class,
        subcommands = {ServeCommand.class},
        description = "A crash-persistent write-back cache on a persistent memory region, served over NBD "
                + "(dm-pcache in userspace).")
public final class PcacheCommand implements Runnable {

    /** Class-path resource holding the command line's Logback configuration. */
    static final String LOGBACK_CONFIGURATION = "org/pcache/cli/logback.xml";

    /** Exit status for a command line that cannot be parsed (picocli's convention). */
    static final int USAGE_ERROR = 2;

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    private boolean debug;

    /** {@code --debug}: DEBUG logging, and stack traces for errors that stop a command. */
    @CommandLine.Option(names = "--debug", scope = CommandLine.ScopeType.INHERIT,
            description = "Log at DEBUG and print stack traces of errors.")
    void debug(boolean enabled) {
        debug = enabled;
        if (enabled) {
            ((ch.qos.logback.classic.Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME))
                    .setLevel(Level.DEBUG);
        }
    }

    boolean debug() {
        return debug;
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        if (System.getProperty("logback.configurationFile") == null) {
            System.setProperty("logback.configurationFile", LOGBACK_CONFIGURATION);
        }
        System.exit(commandLine().execute(args));
    }

    /** The command line with pcache's one-line error reporting. */
    static CommandLine commandLine() {
        CommandLine commandLine = new CommandLine(new PcacheCommand());
        commandLine.setParameterExceptionHandler(PcacheCommand::usageError);
        return commandLine;
    }

    private static int usageError(CommandLine.ParameterException e, String[] args) {
        CommandLine command = e.getCommandLine();
        PrintWriter err = command.getErr();
        err.println(command.getCommandSpec().qualifiedName() + ": " + e.getMessage() + " (see '"
                + command.getCommandSpec().qualifiedName() + " --help')");
        err.flush();
        return USAGE_ERROR;
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
