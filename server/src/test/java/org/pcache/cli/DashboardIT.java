package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.logging.LogEntry;
import org.openqa.selenium.logging.LogType;
import org.openqa.selenium.support.ui.WebDriverWait;
import org.pcache.nbd.ExternalTool;

/**
 * The dashboard in a real headless browser (Debian's chromium and chromium-driver, driven by Selenium) against the
 * real jar: it loads without console errors, its segment map and numbers follow what qemu-io writes (dirty data
 * segments, clean ones after a drain), and a
 * gc_percent set on the page is what {@code pcache status} then prints. With an admin token the page loads, asks for
 * the token, and sends it with every request (the token kept for the tab, across a reload).
 *
 * <p>With {@code -Dpcache.screenshot=FILE} it also saves a screenshot of the page to FILE (docs/dashboard.png is made
 * this way; docs/cli.md has the command).
 */
class DashboardIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static final String CHROMIUM = "/usr/bin/chromium";
    private static final String CHROMEDRIVER = "/usr/bin/chromedriver";
    private static final String TOKEN = "0123456789abcdef-dashboard-token";

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;
    private WebDriver browser;

    @BeforeEach
    void start() throws Exception {
        ExternalTool.require("chromium");
        ExternalTool.require("chromedriver");
        ExternalTool.require("qemu-io");
        files = new ServeFiles(dir);
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM);
        options.addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1100,1250", "--user-data-dir=" + dir.resolve("chromium"));
        options.setCapability("goog:loggingPrefs", Map.of(LogType.BROWSER, "ALL"));
        ChromeDriverService service = new ChromeDriverService.Builder()
                .usingDriverExecutable(new File(CHROMEDRIVER)).usingAnyFreePort().build();
        browser = new ChromeDriver(service, options);
    }

    @AfterEach
    void stop() throws Exception {
        if (browser != null) {
            browser.quit();
        }
        if (server != null) {
            server.close();
        }
        files.close();
    }

    @Test
    void thePageFollowsAWritingClientAndItsGcPercentReachesPcacheStatus() throws Exception {
        server = ServeProcess.start(dir, files.serve("1G"));
        browser.get("http://" + server.admin() + "/");
        WebDriverWait wait = new WebDriverWait(browser, TIMEOUT);
        wait.until(page -> !text("key-head").isEmpty());
        assertThat(browser.getTitle()).isEqualTo("pcache dashboard");
        assertThat(text("health")).isEqualTo("healthy");
        String mapBefore = segmentMap();
        String requestsBefore = text("requests");
        assertThat(mapBefore).as("one cell per segment, the log in one").hasSize(31).contains("l");
        assertThat(browser.findElements(By.cssSelector("#segmap .seg"))).hasSize(31);

        ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", "-t", "none", server.uri(),
                "-c", "write -P 0x5a 0 96M", "-c", "flush", "-c", "read 0 16M", "-c", "read 512M 8M")
                .assertSuccess();

        // a poll may land while qemu-io runs (data allocated, no kset yet): wait for one after its flush
        // writeback to a local file may finish before a poll sees the data dirty: data segments are d or c
        wait.withMessage(() -> "segment map " + segmentMap()).until(page -> segmentMap().matches(".*[dc].*")
                && !text("requests").equals(requestsBefore) && !text("key-head").equals("0:0"));
        assertThat(segmentMap()).as("data segments appeared").isNotEqualTo(mapBefore);
        assertThat(browser.findElements(By.cssSelector("#segmap .seg-d, #segmap .seg-c"))).isNotEmpty();
        ServeProcess.Exit drained = ServeProcess.run(dir, "drain", "--admin", server.admin());
        assertThat(drained.status()).as("drain stderr: %s", drained.stderr()).isZero();
        wait.withMessage(() -> "segment map " + segmentMap()).until(page -> segmentMap().contains("c")
                && !segmentMap().contains("d"));
        assertThat(browser.findElements(By.cssSelector("#segmap .seg-c"))).as("clean data after a drain")
                .isNotEmpty();
        assertThat(text("hit-ratio")).endsWith("%");
        assertThat(browser.findElements(By.cssSelector("#latency tr"))).as("a header and a row per command")
                .hasSizeGreaterThan(1);

        WebElement input = browser.findElement(By.id("gc-input"));
        input.clear();
        input.sendKeys("37");
        browser.findElement(By.id("gc-apply")).click();
        wait.until(page -> text("message-result").equals("applied: gc_percent 37"));
        ServeProcess.Exit status = ServeProcess.run(dir, "status", "--admin", server.admin());
        assertThat(status.status()).as("stderr: %s", status.stderr()).isZero();
        assertThat(status.stdout().strip().split(" ")[4]).as("gc_percent in pcache status").isEqualTo("37");
        wait.until(page -> text("gc-percent").equals("37 %"));

        String screenshot = System.getProperty("pcache.screenshot");
        if (screenshot != null) {
            Path file = Path.of(screenshot);
            Files.write(file, ((TakesScreenshot) browser).getScreenshotAs(OutputType.BYTES));
            assertThat(Files.size(file)).as("screenshot size").isLessThan(300 * 1024);
        }
        List<LogEntry> errors = browser.manage().logs().get(LogType.BROWSER).getAll().stream()
                .filter(entry -> entry.getLevel().intValue() >= Level.WARNING.intValue()).toList();
        assertThat(errors).as("console warnings and errors").isEmpty();
    }

    @Test
    void withATokenThePageAsksForItAndSendsItWithEveryRequest() throws Exception {
        Path tokenFile = dir.resolve("admin.token");
        Files.writeString(tokenFile, TOKEN + "\n");
        server = ServeProcess.start(dir, files.serve("1G", "--admin-token-file", tokenFile.toString()));
        browser.get("http://" + server.admin() + "/");
        WebDriverWait wait = new WebDriverWait(browser, TIMEOUT);
        wait.until(page -> browser.findElement(By.id("auth")).isDisplayed());
        assertThat(text("health")).isEqualTo("token needed");
        assertThat(text("auth-reason")).contains("requires a token");
        assertThat(text("key-head")).as("no data without the token").isEmpty();

        browser.findElement(By.id("token-input")).sendKeys(TOKEN);
        browser.findElement(By.id("token-use")).click();
        wait.until(page -> !text("key-head").isEmpty());
        assertThat(browser.findElement(By.id("auth")).isDisplayed()).isFalse();
        assertThat(text("health")).isEqualTo("healthy");
        browser.navigate().refresh();
        wait.until(page -> !text("key-head").isEmpty());
        assertThat(browser.findElement(By.id("auth")).isDisplayed()).as("the token kept across a reload").isFalse();

        WebElement input = browser.findElement(By.id("gc-input"));
        input.clear();
        input.sendKeys("23");
        browser.findElement(By.id("gc-apply")).click();
        wait.until(page -> text("message-result").equals("applied: gc_percent 23"));
        ServeProcess.Exit status = ServeProcess.run(dir, "status", "--admin", server.admin(), "--admin-token-file",
                tokenFile.toString());
        assertThat(status.status()).as("stderr: %s", status.stderr()).isZero();
        assertThat(status.stdout().strip().split(" ")[4]).as("gc_percent in pcache status").isEqualTo("23");
        List<LogEntry> errors = browser.manage().logs().get(LogType.BROWSER).getAll().stream()
                .filter(entry -> entry.getLevel().intValue() >= Level.WARNING.intValue())
                .filter(entry -> !entry.getMessage().contains("/status - Failed to load resource: the server "
                        + "responded with a status of 401")).toList();
        assertThat(errors).as("console warnings and errors besides the 401s before the token").isEmpty();
    }

    private String text(String id) {
        return browser.findElement(By.id(id)).getText();
    }

    private String segmentMap() {
        return browser.findElement(By.id("segmap")).getDomAttribute("data-map");
    }
}
