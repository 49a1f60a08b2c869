import RunnerCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A ``ProcessHandle`` that runs nothing, for ``RecordingCommandRunner/start(_:options:)``: it
/// hands out scripted output, records the signals it gets, and ends when the script says so
/// (at once, on a signal, or when the test calls ``exit(_:)``).
public final class ScriptedProcess: ProcessHandle {
    /// When a scripted process ends.
    public enum Ending: Sendable, Hashable {
        /// Already ended with this status.
        case exited(ExitStatus)
        /// Runs until ``exit(_:)``, or until one of these signals, when it ends killed by it.
        case onSignal(Set<Int32>)
    }

    private struct State {
        var status: ExitStatus?
        var output: [UInt8]
        var signals: [Int32] = []
        var groupSignals: [Int32] = []
    }

    public let pid: Int32
    private let ending: Ending
    private let state: Mutex<State>

    /// A process with `pid` (never a real one's: signals are only recorded) that has `output`
    /// to read and ends as `ending` says.
    public init(pid: Int32 = 0, output: [UInt8] = [], ending: Ending) {
        self.pid = pid
        self.ending = ending
        var state = State(output: output)
        if case .exited(let status) = ending { state.status = status }
        self.state = Mutex(state)
    }

    /// A process that has already ended with `status`.
    public convenience init(pid: Int32 = 0, output: [UInt8] = [], status: ExitStatus) {
        self.init(pid: pid, output: output, ending: .exited(status))
    }

    /// The signals sent to the process alone, in order.
    public var signals: [Int32] { state.withLock { $0.signals } }
    /// The signals sent to its process group, in order.
    public var groupSignals: [Int32] { state.withLock { $0.groupSignals } }

    /// Ends the process with `status` (if it still runs).
    public func exit(_ status: ExitStatus) {
        state.withLock { if $0.status == nil { $0.status = status } }
    }

    /// Adds output for the next ``readAvailableOutput()``.
    public func write(_ bytes: [UInt8]) {
        state.withLock { $0.output += bytes }
    }

    @discardableResult
    public func signal(_ signal: Int32) -> Bool {
        state.withLock { state in
            guard state.status == nil else { return false }
            state.signals.append(signal)
            endIfScripted(signal, &state)
            return true
        }
    }

    public func signalGroup(_ signal: Int32) {
        state.withLock { state in
            state.groupSignals.append(signal)
            endIfScripted(signal, &state)
        }
    }

    private func endIfScripted(_ signal: Int32, _ state: inout State) {
        if state.status == nil, case .onSignal(let endings) = ending, endings.contains(signal) {
            state.status = .signaled(signal)
        }
    }

    public func poll() -> ExitStatus? { state.withLock { $0.status } }

    public func wait() async -> ExitStatus {
        while true {
            if let status = poll() { return status }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    public func readAvailableOutput() -> [UInt8] {
        state.withLock { state in
            defer { state.output = [] }
            return state.output
        }
    }
}
