import RunnerCore
import Testing

@testable import RunnerGuests

@Suite struct NsenterTests {
    @Test func enterEntersEveryNamespaceKeepingTheEnvironment() {
        var inner = Command("/bin/true", ["x"])
        inner.environment = ["K": "v"]
        inner.clearsEnvironment = true
        let command = Nsenter().enter(leader: 42, inner)
        #expect(command.argv == ["nsenter", "--target=42", "--all", "--", "/bin/true", "x"])
        #expect(command.environment == ["K": "v"])
        #expect(command.clearsEnvironment)
    }
}
