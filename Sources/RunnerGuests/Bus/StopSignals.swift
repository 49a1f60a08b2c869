import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// SIGINT and SIGTERM turned into a step's stop requests: bytes on a descriptor that whoever
/// runs the step watches (the relay's connection, or a pipe to the unit's runner).
package enum StopSignals {
    /// The byte the hook sends for a second signal: kill the step outright.
    package static let killByte: UInt8 = 0xff

    /// Ignores SIGINT and SIGTERM for the process and, instead, writes one byte to `descriptor`
    /// per signal: the first signal's number (stop the step), then ``StopSignals/killByte`` for
    /// any further one (kill it). Cancel the returned sources once the step is over. The
    /// process must ignore SIGPIPE (the helper and the hook do), since the reader may be gone.
    static func forward(to descriptor: Int32) -> [any DispatchSourceSignal] {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let count = Mutex(0)
        let queue = DispatchQueue(label: "runner.signals")
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                let first = count.withLock { value in
                    defer { value += 1 }
                    return value == 0
                }
                var byte = first ? UInt8(sig) : StopSignals.killByte
                _ = write(descriptor, &byte, 1)
            }
            source.resume()
            sources.append(source)
        }
        return sources
    }
}
