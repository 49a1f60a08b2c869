import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Blocking work (waiting for a process, a `poll` on a socket, a step over a guest's bus) run
/// on a thread of its own, so async code can await it without holding one of the cooperative
/// pool's threads (on a 2-core machine there are two, shared by every task of the process).
package enum DedicatedThread {
    /// Runs `body` on a new, detached thread. When no thread can be made, runs it here.
    package static func start(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Body(body))
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                guard let raw else { return nil }
                Unmanaged<Body>.fromOpaque(raw).takeRetainedValue().run()
                return nil
            }, box.toOpaque())
        guard rc == 0 else {
            box.takeRetainedValue().run()
            return
        }
        pthread_detach(thread)
    }

    /// Runs `body` on a thread of its own and returns its result.
    package static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            start { continuation.resume(returning: body()) }
        }
    }

    /// Runs `body` on a thread of its own and returns its result or rethrows its error.
    package static func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await run {
            do throws(E) {
                return .success(try body())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
}
