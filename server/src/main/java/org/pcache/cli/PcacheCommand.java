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
 * class path, so programs that embed pcache as a library keep their own configuration. Only {@code serve} logs its
 * lifecycle at INFO; the other commands print their results and log WARN and up, all of it with {@code --debug}.
 *
 * <p>Errors are one line on stderr, starting with {@code pcache}: a wrong command line exits with
 * {@value #USAGE_ERROR}, a command that could not do its work with {@value #FAILURE} (or {@value #CORRUPT} when a
 * cache image fails validation); {@code --debug} adds the stack trace. {@code --help} shows the usage.
 */
@Command(name = "pcache",
        mixinStandardHelpOptions = true,
        versionProvider = PcacheCommand.Version.class,
        subcommands = {ServeCommand.class, StatusCommand.class, MessageCommand.class, DrainCommand.class,
                CheckCommand.class, DumpCommand.class, RecoverCommand.class},
        description = "A crash-persistent write-back cache on a persistent memory region, served over NBD "
                + "(dm-pcache in userspace).")
public final class PcacheCommand implements Runnable {

    /** Class-path resource holding the command line's Logback configuration. */
    static final String LOGBACK_CONFIGURATION = "org/pcache/cli/logback.xml";

    /** Exit status of a command that could not do its work: a missing file, an unreachable endpoint, ... */
    static final int FAILURE = 1;
    /** Exit status for a command line that cannot be parsed (picocli's convention). */
    static final int USAGE_ERROR = 2;
    /** Exit status of check, dump and recover when the cache image fails validation. */
    static final int CORRUPT = 3;

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    private boolean debug;

    /** {@code --debug}: DEBUG logging, and stack traces for errors that stop a command. */
    @CommandLine.Option(names = "--debug", scope = CommandLine.ScopeType.INHERIT,
            description = "Log at DEBUG and print stack traces of errors.")
    void debug(boolean enabled) {
        debug = enabled;
        if (enabled) {
            rootLogger().setLevel(Level.DEBUG);
        }
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
        commandLine.setExecutionExceptionHandler(PcacheCommand::failure);
        commandLine.setExecutionStrategy(PcacheCommand::execute);
        // `pcache message gc_percent -1` must reach the message parser, not be taken for an unknown option.
        commandLine.getSubcommands().get("message").setUnmatchedOptionsArePositionalParams(true);
        return commandLine;
    }

    /** Runs the command asked for, after quietening the log of every command but serve (see the class comment). */
    private static int execute(CommandLine.ParseResult parseResult) {
        CommandLine.ParseResult subcommand = parseResult.subcommand();
        boolean debug = ((PcacheCommand) parseResult.commandSpec().userObject()).debug;
        if (subcommand != null && !debug && !subcommand.commandSpec().name().equals("serve")) {
            rootLogger().setLevel(Level.WARN);
        }
        return new CommandLine.RunLast().execute(parseResult);
    }

    private static ch.qos.logback.classic.Logger rootLogger() {
        return (ch.qos.logback.classic.Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    }

    /**
     * The boundary of every command: a {@link CommandException} is its one line and exit status; anything else is a
     * bug, still reported in one line. The stack trace only with {@code --debug}.
     */
    private static int failure(Exception e, CommandLine command, CommandLine.ParseResult parseResult) {
        PrintWriter err = command.getErr();
        int status = FAILURE;
        if (e instanceof CommandException failure) {
            err.println("pcache: " + failure.getMessage());
            status = failure.exitStatus();
        } else {
            err.println("pcache: internal error: " + e);
        }
        CommandLine root = command;
        while (root.getParent() != null) {
            root = root.getParent();
        }
        if (((PcacheCommand) root.getCommand()).debug) {
            (e instanceof CommandException && e.getCause() != null ? e.getCause() : e).printStackTrace(err);
        }
        err.flush();
        return status;
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
