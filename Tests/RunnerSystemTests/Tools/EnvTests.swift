import RunnerCore
import RunnerSystem
import Testing

@Suite struct EnvTests {
    @Test func changingDirectory() {
        let inner = Command("/bin/pwd", ["-P"], environment: ["K": "v"], workingDirectory: "/elsewhere")
        let command = Env().changingDirectory("/srv", inner)
        #expect(command.argv == ["/usr/bin/env", "--chdir=/srv", "--", "/bin/pwd", "-P"])
        #expect(command.environment.isEmpty && command.workingDirectory == nil)
    }
}
