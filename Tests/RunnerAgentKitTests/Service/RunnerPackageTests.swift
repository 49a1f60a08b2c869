import RunnerCore
import Testing

@testable import RunnerAgentKit

@Suite struct RunnerPackageTests {
    let package = RunnerPackage(directory: "/opt/actions-runner")

    /// The token reaches config.sh through stdin and a shell prelude that exports it and execs
    /// the script: it is on no command line and in no environment but config.sh's own.
    @Test func configureIsUnattendedWithUpdatesDisabledAndTheTokenOnStandardInput() throws {
        var options = RunnerPackage.ConfigureOptions(
            url: "https://github.com/acme", name: "r1", workDirectory: "/var/lib/runner/work")
        options.labels = ["a", "b"]
        options.group = "g"
        options.ephemeral = true
        options.noDefaultLabels = true
        let invocation = try package.configure(options, token: Secret("AREGTOKEN"))
        let command = invocation.command
        #expect(
            command.argv == [
                "/bin/sh", "-c",
                "IFS= read -r ACTIONS_RUNNER_INPUT_TOKEN && export ACTIONS_RUNNER_INPUT_TOKEN && exec \"$0\" \"$@\"",
                "/opt/actions-runner/config.sh", "--unattended", "--url", "https://github.com/acme", "--name", "r1",
                "--work", "/var/lib/runner/work", "--replace", "--disableupdate", "--labels", "a,b", "--runnergroup",
                "g", "--ephemeral", "--no-default-labels",
            ])
        #expect(command.environment.isEmpty)
        #expect(invocation.standardInput == Array("AREGTOKEN\n".utf8))
        #expect(!command.description.contains("AREGTOKEN"))
        #expect(command.workingDirectory == "/opt/actions-runner")
    }

    @Test func aSecretThatIsNotOneLineIsRefused() {
        let options = RunnerPackage.ConfigureOptions(url: "https://github.com/acme", name: "r1", workDirectory: "/w")
        for bad in ["", "A\nB", "A\rB", "A\u{0}B", "A\r\nB"] {
            #expect(throws: RunnerError.self) { try package.configure(options, token: Secret(bad)) }
            #expect(throws: RunnerError.self) { try package.run(jitConfig: Secret(bad)) }
        }
    }

    @Test func removeLocalAndRun() throws {
        #expect(package.removeLocal().argv == ["/opt/actions-runner/config.sh", "remove", "--local"])
        let plain = try package.run(jitConfig: nil)
        #expect(plain.command.argv == ["/opt/actions-runner/run.sh"])
        #expect(plain.standardInput == nil)
        let jit = try package.run(jitConfig: Secret("JITBLOB"))
        #expect(
            jit.command.argv == [
                "/bin/sh", "-c",
                "IFS= read -r ACTIONS_RUNNER_INPUT_JITCONFIG && export ACTIONS_RUNNER_INPUT_JITCONFIG && exec \"$0\" \"$@\"",
                "/opt/actions-runner/run.sh",
            ])
        #expect(jit.command.environment.isEmpty)
        #expect(jit.standardInput == Array("JITBLOB\n".utf8))
    }
}
