import Dispatch
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Where a step's stdout or stderr goes, made safe to hand into a guest.
///
/// A step runs as root in its guest and gets these descriptors (passed to its unit over the bus).
/// A pipe or a socket is harmless there. Anything else the caller passes (a file, a terminal, a
/// directory) would give the guest's root a way out: `/proc/self/fd/N` reopens the host file with
/// any access, and `openat` walks from a directory. Those go through a pipe of ours instead, and
/// we copy what the step writes to the caller's descriptor (with only the access it has).
package final class StepOutput: Sendable {
    /// What the step gets: the caller's descriptor, or the write end of our pipe.
    let descriptor: Int32
    private let writeEnd: Int32?
    private let copied: DispatchSemaphore?

    private init(descriptor: Int32, writeEnd: Int32?, copied: DispatchSemaphore?) {
        self.descriptor = descriptor
        self.writeEnd = writeEnd
        self.copied = copied
    }

    /// Whether `fd` can go to a guest as it is (a pipe or a socket).
    static func isSafeForGuest(_ fd: Int32) -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        let type = st.st_mode & S_IFMT
        return type == S_IFIFO || type == S_IFSOCK
    }

    /// `fd` itself when it is safe, else a pipe whose output we copy to `fd`.
    static func prepare(_ fd: Int32) throws(RunnerError) -> StepOutput {
        if isSafeForGuest(fd) { return StepOutput(descriptor: fd, writeEnd: nil, copied: nil) }
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            throw RunnerError.posix("could not create a pipe for", "the step's output", fix: nil)
        }
        _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        // The copier owns a duplicate: the caller may close `fd` while a copy that outlived
        // ``finish(timeout:)`` still drains.
        let target = fcntl(fd, F_DUPFD_CLOEXEC, 3)
        guard target >= 0 else {
            close(ends[0])
            close(ends[1])
            throw RunnerError.posix("could not duplicate", "the step's output", fix: nil)
        }
        let done = DispatchSemaphore(value: 0)
        let source = ends[0]
        // On a thread of its own: it blocks in read until the step ends.
        DedicatedThread.start {
            copy(from: source, to: target)
            close(source)
            close(target)
            done.signal()
        }
        return StepOutput(descriptor: ends[1], writeEnd: ends[1], copied: done)
    }

    /// After the step: closes our write end and waits (bounded: a guest process that kept the
    /// pipe open must not hold the hook) until what the step wrote is copied. The copier closes
    /// the read end itself when the last writer is gone.
    func finish(timeout: Double = 5) {
        guard let writeEnd, let copied else { return }
        close(writeEnd)
        _ = copied.wait(timeout: .now() + timeout)
    }

    private static func copy(from source: Int32, to target: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            var offset = 0
            while offset < n {
                let written = buffer.withUnsafeBytes { write(target, $0.baseAddress?.advanced(by: offset), n - offset) }
                if written < 0 && errno == EINTR { continue }
                // The reader is gone: keep draining so the step never blocks on a full pipe.
                if written <= 0 { break }
                offset += written
            }
        }
    }
}
