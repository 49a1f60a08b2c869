import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The one signal forwarder. SIGINT and SIGTERM are what it forwards in the agent; a test
/// process must keep those, so these tests forward SIGUSR1 and SIGUSR2 (one each: they run in
/// one process, side by side).
@Suite(.serialized) struct SignalForwarderTests {
    /// Waits (bounded) until `condition` holds.
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<2000 where !condition() { try await Task.sleep(for: .milliseconds(5)) }
    }

    /// Waits until libdispatch watches `signal` (it registers a source asynchronously; a
    /// signal before that is ignored).
    static func watching(_ signal: Int32) async throws {
        try await eventually { SignalForwarder.isCaught(signal) }
        try #require(SignalForwarder.isCaught(signal))
        try await Task.sleep(for: .milliseconds(20))
    }

    @Test func theFirstSignalAndTheOnesAfterAreTold() async throws {
        let seen = Mutex<[(Int32, Bool)]>([])
        let forwarder = SignalForwarder(signals: [SIGUSR1]) { signal, first in
            seen.withLock { $0.append((signal, first)) }
        }
        defer { forwarder.cancel() }
        #expect(forwarder.firstSignal == nil)
        try await Self.watching(SIGUSR1)
        kill(getpid(), SIGUSR1)
        try await Self.eventually { seen.withLock { $0.count } == 1 }
        kill(getpid(), SIGUSR1)
        try await Self.eventually { seen.withLock { $0.count } == 2 }
        #expect(seen.withLock { $0.map(\.0) } == [SIGUSR1, SIGUSR1])
        #expect(seen.withLock { $0.map(\.1) } == [true, false])
        #expect(forwarder.firstSignal == SIGUSR1)
        #expect(forwarder.received == [SIGUSR1, SIGUSR1])
    }

    /// What the relay's hook side and the helper's step do: one byte per signal on a descriptor.
    @Test func bytesOnADescriptorStopThenKill() async throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { ends.forEach { close($0) } }
        let forwarder = SignalForwarder.writingBytes(to: ends[1], repeated: 0xff, signals: [SIGUSR2])
        try await Self.watching(SIGUSR2)
        // One at a time: a signal sent while the same one is pending is merged into it.
        kill(getpid(), SIGUSR2)
        try await Self.eventually { forwarder.received.count == 1 }
        kill(getpid(), SIGUSR2)
        try await Self.eventually { forwarder.received.count == 2 }
        forwarder.cancel()
        var bytes = [UInt8](repeating: 0, count: 4)
        _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
        let n = read(ends[0], &bytes, bytes.count)
        #expect(Array(bytes[0..<max(0, n)]) == [UInt8(SIGUSR2), 0xff])
        // Cancelled: a further signal is not forwarded.
        kill(getpid(), SIGUSR2)
        try await Task.sleep(for: .milliseconds(50))
        #expect(forwarder.received.count == 2)
    }

    /// The helper's step through sudo: a signal that arrives before the child started reaches it
    /// once it is attached; a second one kills it.
    @Test func aChildTargetGetsWhatArrivedBeforeItStarted() async throws {
        let target = SignalForwarder.ChildTarget()
        target.send(SIGTERM)
        let child = try Spawner.spawn(Command("sleep", ["30"]), options: SpawnOptions(grouping: .newProcessGroup))
        target.attach(child)
        #expect(await child.wait() == .signaled(SIGTERM))

        // The first signal as it is, the next one as SIGKILL.
        let scripted = ScriptedProcess(ending: .onSignal([SIGKILL]))
        let (forwarder, later) = SignalForwarder.toChild(signals: [SIGUSR1])
        defer { forwarder.cancel() }
        later.attach(scripted)
        try await Self.watching(SIGUSR1)
        kill(getpid(), SIGUSR1)
        try await Self.eventually { scripted.signals.count == 1 }
        kill(getpid(), SIGUSR1)
        try await Self.eventually { scripted.signals.count == 2 }
        #expect(scripted.signals == [SIGUSR1, SIGKILL])
        #expect(scripted.poll() == .signaled(SIGKILL))
    }
}
