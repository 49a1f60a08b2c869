import RunnerCore
import Testing

@testable import RunnerGuests

@Suite struct TimeoutTests {
    @Test func boundedKeepsTheCommandAndItsEnvironment() {
        var inner = Command("systemctl", ["stop", "--", "u.service"])
        inner.environment = ["K": "v"]
        let command = Timeout().bounded(.init(seconds: 20), inner)
        #expect(command.argv == ["timeout", "--kill-after=5", "20", "systemctl", "stop", "--", "u.service"])
        #expect(command.environment == ["K": "v"])
        #expect(
            Timeout().bounded(.init(seconds: 3, killAfterSeconds: 1), Command("true")).argv == [
                "timeout", "--kill-after=1", "3", "true",
            ])
    }
}
