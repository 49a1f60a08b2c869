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

    /// A guest's own limits under its job's: what the job asked for, lowered to the ceilings;
    /// nothing it did not ask for.
    @Test func aGuestsOwnLimitsAreOnlyWhatItAskedFor() {
        let ceiling = GuestLimits(memoryMax: 1 << 30, cpus: 2, tasksMax: 512)
        #expect(ceiling.requested(GuestLimits(memoryMax: 2 << 30, cpus: 1)) == GuestLimits(memoryMax: 1 << 30, cpus: 1))
        #expect(ceiling.requested(nil).isEmpty)
        #expect(GuestLimits().requested(GuestLimits(cpus: 0.5)) == GuestLimits(cpus: 0.5))
    }

    @Test func unitPropertiesAreTheLimitsThatAreSet() {
        #expect(GuestLimits().unitProperties == [])
        #expect(
            GuestLimits(memoryMax: 1 << 30, cpus: 1.5, tasksMax: 512).unitProperties == [
                "MemoryMax=1073741824", "CPUQuota=150%", "TasksMax=512",
            ])
        #expect(GuestLimits(cpus: 0.25).unitProperties == ["CPUQuota=25%"])
    }
}
