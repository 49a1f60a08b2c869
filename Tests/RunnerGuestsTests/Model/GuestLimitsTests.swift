import RunnerCore
import Testing

@testable import RunnerGuests

@Suite struct GuestLimitsTests {
    @Test func limitsAreNarrowedToWhatTheJobAsksNeverRaised() {
        let ceiling = GuestLimits(memoryMax: 1 << 30, cpus: 2, tasksMax: 512)
        #expect(
            ceiling.narrowed(to: GuestLimits(memoryMax: 1 << 20, cpus: 4))
                == GuestLimits(memoryMax: 1 << 20, cpus: 2, tasksMax: 512))
        #expect(GuestLimits().narrowed(to: GuestLimits(cpus: 1.5)).cpuQuotaMicroseconds == 150_000)
        #expect(ceiling.narrowed(to: nil) == ceiling)
    }
}
