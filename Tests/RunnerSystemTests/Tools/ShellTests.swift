import RunnerCore
import RunnerSystem
import Testing

@Suite struct ShellTests {
    @Test func wrappingPutsOperandsBeforeTheCommandAndKeepsItsContext() {
        let inner = Command(
            "/opt/r/run.sh", ["a"], environment: ["K": "v"], clearsEnvironment: true, workingDirectory: "/opt/r")
        let wrapped = Shell().wrapping("exec \"$0\" \"$@\"", inner)
        #expect(wrapped.argv == ["/bin/sh", "-c", "exec \"$0\" \"$@\"", "/opt/r/run.sh", "a"])
        #expect(wrapped.environment == ["K": "v"])
        #expect(wrapped.clearsEnvironment)
        #expect(wrapped.workingDirectory == "/opt/r")
        #expect(
            Shell().wrapping("shift; exec \"$@\"", operands: ["name", "1"], Command("true")).argv == [
                "/bin/sh", "-c", "shift; exec \"$@\"", "name", "1", "true",
            ])
    }
}
