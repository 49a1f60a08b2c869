import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// SIGINT and SIGTERM turned into a step's stop requests: bytes on a descriptor that whoever
/// runs the step watches (the relay's connection, or a pipe to the unit's runner).
package enum StopSignals {
    /// The byte the hook sends for a second signal: kill the step outright.
    package static let killByte: UInt8 = 0xff

    /// Ignores SIGINT and SIGTERM for the process and, instead, writes one byte to `descriptor`
    /// per signal (``SignalForwarder/writingBytes(to:repeated:)``): the first signal's number
    /// (stop the step), then ``StopSignals/killByte`` for any further one (kill it). Cancel the
    /// forwarder once the step is over. The process must ignore SIGPIPE (the helper and the
    /// hook do), since the reader may be gone.
    static func forward(to descriptor: Int32) -> SignalForwarder {
        SignalForwarder.writingBytes(to: descriptor, repeated: StopSignals.killByte)
    }
}
