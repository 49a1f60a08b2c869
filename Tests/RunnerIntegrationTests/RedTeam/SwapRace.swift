import CRunnerSystem
import Foundation
import FoundationEssentials
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Swaps two names with `renameat2(RENAME_EXCHANGE)` in a tight loop on a thread of its own, as
/// the runner user would to race the helper's check against its mount.
final class SwapRace: Sendable {
    private let running = Atomic<Bool>(true)
    private let count = Atomic<Int>(0)
    private let first: String
    private let second: String

    init(_ first: String, _ second: String) {
        self.first = first
        self.second = second
    }

    func start() {
        let thread = Thread { [self] in
            while running.load(ordering: .relaxed) {
                if runner_renameat2(AT_FDCWD, first, AT_FDCWD, second, UInt32(RUNNER_RENAME_EXCHANGE)) == 0 {
                    count.add(1, ordering: .relaxed)
                }
            }
        }
        thread.start()
    }

    func stop() { running.store(false, ordering: .relaxed) }
    var swaps: Int { count.load(ordering: .relaxed) }
}
