import Synchronization
import Testing

@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// ``StandardInput``: stdin is read to EOF without holding a thread of the cooperative pool.
@Suite struct StandardInputTests {
    /// A pipe's read end and write end.
    static func pipePair() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        return (fds[0], fds[1])
    }

    /// Whoever closes the write ends first (the writer task, or the watchdog).
    final class Closer: Sendable {
        let pipes: [(read: Int32, write: Int32)]
        let done = Mutex(false)
        init(_ pipes: [(read: Int32, write: Int32)]) { self.pipes = pipes }
        func close(writing text: String) {
            done.withLock { done in
                guard !done else { return }
                done = true
                for pipe in pipes {
                    StandardInputTests.write(text, to: pipe.write)
                    Glibc.close(pipe.write)
                }
            }
        }
        var isDone: Bool { done.withLock { $0 } }
    }

    static func write(_ text: String, to fd: Int32) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    @Test func readsEverythingUntilTheWriterCloses() async throws {
        let pipe = try Self.pipePair()
        let payload = String(repeating: "x", count: 200_000)
        DedicatedThread.start {
            Self.write(payload, to: pipe.write)
            close(pipe.write)
        }
        let bytes = await StandardInput.read(fileDescriptor: pipe.read)
        close(pipe.read)
        #expect(bytes.count == 200_000)
    }

    /// An executor of one thread of its own: the tasks that prefer it share that thread only, so
    /// whether they can all make progress does not depend on what other suites of the process do
    /// with the cooperative pool meanwhile (a loaded machine, other tests' waits).
    final class OneThreadExecutor: TaskExecutor, @unchecked Sendable {
        private let queue = Mutex<[UnownedJob]>([])
        private let signal = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

        init() {
            sem_init(signal, 0, 0)
            DedicatedThread.start { [self] in
                while true {
                    while sem_wait(signal) != 0 {}
                    let job = queue.withLock { $0.removeFirst() }
                    job.runSynchronously(on: asUnownedTaskExecutor())
                }
            }
        }

        func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            queue.withLock { $0.append(job) }
            sem_post(signal)
        }
    }

    /// The attack on a blocking read: several reads pending on an executor of one thread, and the
    /// only writer is another task of that executor. A `read(2)` there would hold the thread, the
    /// writer task would never run, and only the watchdog thread (after 10 s) would end the reads.
    @Test func pendingReadsLeaveTheirThreadFreeForTheTaskThatFeedsThem() async throws {
        let readers = 4
        let pipes = try (0..<readers).map { _ in try Self.pipePair() }
        let closer = Closer(pipes)
        DedicatedThread.start {
            for _ in 0..<100 {
                usleep(100_000)
                if closer.isDone { return }
            }
            closer.close(writing: "watchdog")
        }
        let results = await withTaskExecutorPreference(OneThreadExecutor()) {
            await withTaskGroup(of: [UInt8].self) { group in
                for pipe in pipes {
                    group.addTask { await StandardInput.read(fileDescriptor: pipe.read) }
                }
                group.addTask {
                    try? await Task.sleep(for: .milliseconds(200))
                    closer.close(writing: "task")
                    return Array("writer".utf8)
                }
                var all: [[UInt8]] = []
                for await bytes in group { all.append(bytes) }
                return all
            }
        }
        for pipe in pipes { close(pipe.read) }
        let texts = results.map { String(decoding: $0, as: UTF8.self) }.filter { $0 != "writer" }
        #expect(texts.count == readers)
        #expect(texts.allSatisfy { $0 == "task" }, "the reads held the pool until the watchdog: \(texts)")
    }
}
