package org.pcache;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.core.importer.Location;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/**
 * The layering of docs/architecture.md, checked on the production classes of all three modules:
 * backing → pmem → cache (core) → nbd → admin, cli, with no dependency back up and no package
 * cycle. The server module's test class path holds core's and nbd's classes, so this is the one
 * place that sees them all. The module poms already keep core from compiling against nbd or the
 * server's libraries; these rules also hold inside a module, where no pom can.
 */
@AnalyzeClasses(packages = "org.pcache", importOptions = LayeringTest.ProductionClasses.class)
class LayeringTest {

    private static final String[] CORE = {"org.pcache.backing..", "org.pcache.pmem..", "org.pcache.cache.."};

    @ArchTest
    static final ArchRule coreSeesNoServerLayer = noClasses().that().resideInAnyPackage(CORE)
            .should().dependOnClassesThat().resideInAnyPackage("org.pcache.nbd..", "org.pcache.admin..", "org.pcache.cli..")
            .because("core is the library an application embeds without the NBD server or the CLI");

    @ArchTest
    static final ArchRule nbdSeesNoAdminOrCli = noClasses().that().resideInAPackage("org.pcache.nbd..")
            .should().dependOnClassesThat().resideInAnyPackage("org.pcache.admin..", "org.pcache.cli..")
            .because("the NBD module serves a cache; the server module configures and watches it");

    @ArchTest
    static final ArchRule backingSeesNeitherPmemNorCache = noClasses().that().resideInAPackage("org.pcache.backing..")
            .should().dependOnClassesThat().resideInAnyPackage("org.pcache.pmem..", "org.pcache.cache..")
            .because("the backing layer is the bottom of core");

    @ArchTest
    static final ArchRule pmemSeesNoCache = noClasses().that().resideInAPackage("org.pcache.pmem..")
            .should().dependOnClassesThat().resideInAPackage("org.pcache.cache..")
            .because("the persistent region and its format know nothing of the cache built on them");

    @ArchTest
    static final ArchRule coreUsesNoServerLibrary = noClasses().that().resideInAnyPackage(CORE)
            .should().dependOnClassesThat().resideInAnyPackage("picocli..", "ch.qos.logback..",
                    "com.fasterxml.jackson..", "io.micrometer..")
            .because("core depends on the JDK and the SLF4J API only");

    @ArchTest
    static final ArchRule noPackageCycles = slices().matching("org.pcache.(*)..").should().beFreeOfCycles();

    /** Main classes only: the test sources (and the core and nbd test jars) may cross layers to set up a test. */
    static final class ProductionClasses implements ImportOption {
        @Override
        public boolean includes(Location location) {
            return !location.contains("/test-classes/") && !location.contains("-tests.jar");
        }
    }
}
