import RunnerCore
import Testing

@testable import RunnerAgentKit

/// The relay refuses a caller that came through sudo.
@Suite struct RelayCallerTests {
    @Test(arguments: ["SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND"])
    func aSudoVariableIsRefused(_ variable: String) {
        #expect(throws: RunnerError.self) {
            try RelayCommand.checkCaller { $0 == variable ? "1001" : nil }
        }
    }

    @Test func aCleanEnvironmentIsServed() throws {
        try RelayCommand.checkCaller { _ in nil }
    }
}
