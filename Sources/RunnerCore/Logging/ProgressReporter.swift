import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Progress of long work (bakes, downloads, unpacking).
///
/// On a terminal it redraws one status line; otherwise (CI logs, the journal) it prints a
/// plain line per stage and at most one line per `plainInterval` for counters, with no
/// carriage returns or spinners.
public final class ProgressReporter: Sendable {
    private struct State {
        var lastPlain: Double = -.infinity
        var drawn = false
    }
    private let isTerminal: Bool
    private let plainInterval: Double
    private let write: @Sendable (String) -> Void
    private let state = Mutex(State())

    /// - Parameters:
    ///   - isTerminal: whether to redraw a line; defaults to whether stdout is a TTY.
    ///   - write: where text goes; defaults to stdout.
    public init(
        isTerminal: Bool = StandardOutput.isTerminal,
        plainInterval: Double = 5,
        write: @escaping @Sendable (String) -> Void = { StandardOutput.write($0) }
    ) {
        self.isTerminal = isTerminal
        self.plainInterval = plainInterval
        self.write = write
    }

    /// A progress reporter that prints nothing.
    public static let silent = ProgressReporter(isTerminal: false, write: { _ in })

    /// Announces a stage (`[2/5] installing packages`). Always a line of its own.
    public func stage(_ text: String) {
        state.withLock { state in
            clearLine(&state)
            write(text + "\n")
        }
    }

    /// Updates a counter within the current stage (`unpacking: 1200 files, 80 MB`).
    /// Redraws on a terminal; throttled plain lines otherwise.
    public func update(_ text: String) {
        state.withLock { state in
            if isTerminal {
                write("\r\u{1B}[K" + text)
                state.drawn = true
            } else {
                let now = Self.monotonicSeconds()
                if now - state.lastPlain >= plainInterval {
                    state.lastPlain = now
                    write(text + "\n")
                }
            }
        }
    }

    /// Ends the current stage's counter with a final line.
    public func finish(_ text: String) {
        state.withLock { state in
            clearLine(&state)
            write(text + "\n")
        }
    }

    private func clearLine(_ state: inout State) {
        if state.drawn {
            write("\r\u{1B}[K")
            state.drawn = false
        }
    }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
