import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent relay NAME --uid UID`: one guest's step relay, started by `start` (see
/// ``GuestRelay``). Not part of the `ci-nspawn-run` tree (the sudoers rule cannot name it), and
/// it refuses a caller that came through sudo.
public struct RelayCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Serve one guest's steps on the listening socket given as stdin (started by `guest start`).",
        shouldDisplay: false)

    @Argument(help: "The guest name.")
    var name: String

    @Option(help: "The user allowed to connect.")
    var uid: UInt32

    public init() {}

    /// The variables sudo sets for the command it runs.
    static let sudoVariables = ["SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND"]

    /// Refuses a caller that came through sudo (the relay is root's, started by `start` with a
    /// fresh environment).
    static func checkCaller(environment: (String) -> String? = ProcessEnvironment.value) throws(RunnerError) {
        if let variable = sudoVariables.first(where: { environment($0) != nil }) {
            throw RunnerError(
                .permission, input: "relay",
                problem: "is internal to the runner and cannot be run through sudo (\(variable) is set)",
                fix: "`ci-nspawn-run start` starts a guest's relay; run steps with the hook")
        }
    }

    public func run() throws {
        try Self.checkCaller()
        guard geteuid() == 0 else {
            throw RunnerError(
                .permission, input: "relay", problem: "runs only as root", fix: "it is started by `start`")
        }
        var listening: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening == 1 else {
            throw RunnerError(
                .invalidInput, input: "stdin", problem: "is not a listening socket",
                fix: "the relay is started by `ci-nspawn-run start`; do not run it by hand")
        }
        GuestRelay.closeInheritedDescriptors()
        let manager = try AgentHost.manager()
        // Started while its guest boots (the record says starting): each step checks that the
        // guest runs.
        guard try manager.record(name) != nil else {
            throw RunnerError(.notFound, input: name, problem: "no such guest", fix: "it is started by `start`")
        }
        GuestRelay(manager: manager, name: name, allowedUID: uid, hookSteps: HookStep.relayRequest)
            .serve(listener: 0)
    }
}
