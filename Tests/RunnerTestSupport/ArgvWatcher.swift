import Foundation
import FoundationEssentials
import RunnerCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Reads every process's `/proc/<pid>/cmdline` in a loop while a test runs, and remembers
/// any that contains a secret (and how many commands of interest it saw at all).
public final class ArgvWatcher: Sendable {
    private struct State {
        var leaks: [String] = []
        var seen: Set<String> = []
        var running = true
    }
    private let state = Mutex(State())
    private let secrets: [String]
    private let scope: String

    /// Watches for `secrets`; counts commands of interest only when their argv mentions `scope`
    /// (the test's own directory: other tests run their own fake runners in parallel).
    public init(secrets: [String], scope: String) {
        self.secrets = secrets.filter { !$0.isEmpty }
        self.scope = scope
    }

    /// Scans on a thread of its own: the cooperative pool (one thread per core) is busy with
    /// the tests running in parallel and could starve a task long enough to miss a process.
    public func start() -> Task<Void, Never> {
        let finished = Mutex(false)
        let thread = Thread { [self] in
            while state.withLock({ $0.running }) {
                scan()
                usleep(2000)
            }
            finished.withLock { $0 = true }
        }
        thread.start()
        return Task {
            while !finished.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(5)) }
        }
    }

    public func stop() { state.withLock { $0.running = false } }
    public var leaks: [String] { state.withLock { $0.leaks } }
    /// Basenames of argv[0]/argv[1] seen (e.g. "config.sh", "run.sh", "curl").
    public var seen: Set<String> { state.withLock { $0.seen } }

    private func scan() {
        guard let directory = opendir("/proc") else { return }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            guard name.allSatisfy(\.isNumber) else { continue }
            let fd = open("/proc/\(name)/cmdline", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard n > 0 else { continue }
            let argv = buffer[0..<n].split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            let line = argv.joined(separator: " ")
            let interesting = argv.prefix(2).map { FilePaths.basename($0) }
            state.withLock { state in
                for word in interesting
                where ["config.sh", "run.sh", "curl", "setpriv"].contains(word) && line.contains(scope) {
                    state.seen.insert(word)
                }
                for secret in secrets where line.contains(secret) {
                    state.leaks.append(line)
                }
            }
        }
    }
}
