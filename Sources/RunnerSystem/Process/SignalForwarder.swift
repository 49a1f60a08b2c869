import Dispatch
import RunnerCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The stop signals a process of ours receives (SIGINT, SIGTERM), taken from their default
/// action and handed to whoever runs a child for us: the first one asks the child to stop, any
/// further one kills it. The one place that catches them: the hook's step through the relay or
/// sudo, the helper's step over a guest's bus, and the service, which turns them into a stop
/// request for the supervisor.
///
/// Creating one takes the signals from their default action for the whole process and watches
/// them on a queue of its own (a dispatch signal source: libdispatch's handler only hands them
/// to its signalfd; the handler here runs on the queue). ``cancel()`` stops the watching; the
/// signals stay caught and go nowhere, so one arriving as the step's status is reported cannot
/// end the process halfway.
package final class SignalForwarder: Sendable {
    /// The signals a step's runner stops on.
    package static let stopSignals: [Int32] = [SIGINT, SIGTERM]

    /// The signals received, in order (a box the event handlers share).
    private final class Received: Sendable {
        let signals = Mutex<[Int32]>([])
    }
    private let receivedSignals = Received()
    /// Dispatch sources are thread-safe; the array never changes after `init`.
    private nonisolated(unsafe) let sources: [any DispatchSourceSignal]

    /// Starts forwarding `signals`: `handler(signal, first)` runs for each one received, `first`
    /// true for the first of them.
    package init(
        signals: [Int32] = SignalForwarder.stopSignals,
        _ handler: @escaping @Sendable (_ signal: Int32, _ first: Bool) -> Void
    ) {
        // Ignored until libdispatch has registered the source, which installs a handler of its
        // own (once per signal and process: a later forwarder finds it and leaves it).
        for sig in signals where Self.handler(of: sig) == 0 { Glibc.signal(sig, SIG_IGN) }
        let queue = DispatchQueue(label: "runner.signals")
        let received = receivedSignals
        var sources: [any DispatchSourceSignal] = []
        for sig in signals {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                let first = received.signals.withLock { signals in
                    signals.append(sig)
                    return signals.count == 1
                }
                handler(sig, first)
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    /// The disposition of `signal` as a number: 0 its default action, 1 ignored, else the
    /// address of a handler.
    static func handler(of signal: Int32) -> Int {
        var action = sigaction()
        sigaction(signal, nil, &action)
        return unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self)
    }

    /// Whether a handler catches `signal` (libdispatch's, once a forwarder watches it).
    package static func isCaught(_ signal: Int32) -> Bool { handler(of: signal) > 1 }

    /// The first signal received, or nil.
    package var firstSignal: Int32? { receivedSignals.signals.withLock { $0.first } }

    /// Every signal received so far, in order.
    package var received: [Int32] { receivedSignals.signals.withLock { $0 } }

    /// Stops forwarding (the signals stay ignored).
    package func cancel() {
        sources.forEach { $0.cancel() }
    }

    /// A forwarder that writes one byte per signal to `descriptor`: the first signal's number,
    /// then `repeated` for any further one. The process must ignore SIGPIPE (the reader may be
    /// gone).
    package static func writingBytes(
        to descriptor: Int32, repeated: UInt8, signals: [Int32] = SignalForwarder.stopSignals
    ) -> SignalForwarder {
        SignalForwarder(signals: signals) { signal, first in
            var byte = first ? UInt8(truncatingIfNeeded: signal) : repeated
            _ = write(descriptor, &byte, 1)
        }
    }

    /// Where a forwarder sends signals for a child that starts after the forwarder did (so no
    /// signal is lost while it starts): each goes to the child, or waits for ``attach(_:)``.
    package final class ChildTarget: Sendable {
        private let state = Mutex<(child: (any ProcessHandle)?, pending: [Int32])>((nil, []))

        package init() {}

        /// Sends `signal` to the child, or keeps it until the child is attached.
        package func send(_ signal: Int32) {
            state.withLock { state in
                if let child = state.child {
                    child.signal(signal)
                } else {
                    state.pending.append(signal)
                }
            }
        }

        /// Attaches the child and sends it what arrived before.
        package func attach(_ child: any ProcessHandle) {
            state.withLock { state in
                state.child = child
                for signal in state.pending { child.signal(signal) }
                state.pending = []
            }
        }
    }

    /// A forwarder of `signals` to a child attached to the returned target later: the first
    /// signal goes to it as it is, any further one as SIGKILL.
    package static func toChild(signals: [Int32] = SignalForwarder.stopSignals) -> (
        forwarder: SignalForwarder, target: ChildTarget
    ) {
        let target = ChildTarget()
        let forwarder = SignalForwarder(signals: signals) { signal, first in
            target.send(first ? signal : SIGKILL)
        }
        return (forwarder, target)
    }
}
