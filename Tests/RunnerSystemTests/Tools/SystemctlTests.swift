import RunnerCore
import RunnerSystem
import Testing

@Suite struct SystemctlTests {
    let systemctl = Systemctl()

    @Test func reloadStartAndQueries() {
        #expect(systemctl.daemonReload().argv == ["systemctl", "daemon-reload"])
        #expect(systemctl.start("var-lib-runner.mount").argv == ["systemctl", "start", "--", "var-lib-runner.mount"])
        #expect(
            systemctl.startIgnoringOrder("var-lib-runner.mount").argv == [
                "systemctl", "start", "--job-mode=ignore-dependencies", "--", "var-lib-runner.mount",
            ])
        #expect(
            systemctl.startNoBlock("runner.service").argv == ["systemctl", "start", "--no-block", "runner.service"])
        #expect(systemctl.isEnabled("runner.service").argv == ["systemctl", "is-enabled", "--quiet", "runner.service"])
        #expect(
            systemctl.needsReload("runner.service").argv == [
                "systemctl", "show", "--property=NeedDaemonReload", "--value", "runner.service",
            ])
        #expect(
            systemctl.show("u", properties: ["ExecMainStatus", "ActiveState"]).argv == [
                "systemctl", "show", "--property=ExecMainStatus", "--property=ActiveState", "--", "u",
            ])
    }

    @Test func stopAndKill() {
        #expect(systemctl.stop("u.service").argv == ["systemctl", "stop", "--no-block", "--", "u.service"])
        #expect(systemctl.stop("u", .init(block: true)).argv == ["systemctl", "stop", "--", "u"])
        #expect(systemctl.kill("u", signal: "SIGINT").argv == ["systemctl", "kill", "--signal=SIGINT", "--", "u"])
    }

    @Test func runtimePropertiesOfAUnit() {
        #expect(
            systemctl.setRuntimeProperties("runner-job-0123abcd.slice", ["MemoryMax=1024", "TasksMax=5"]).argv == [
                "systemctl", "set-property", "--runtime", "--", "runner-job-0123abcd.slice", "MemoryMax=1024",
                "TasksMax=5",
            ])
    }
}
