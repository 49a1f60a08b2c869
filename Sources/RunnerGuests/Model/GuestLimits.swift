import RunnerCore

/// Resource ceilings of one guest: memory, CPUs, tasks (nil: no limit).
public struct GuestLimits: Codable, Sendable, Hashable {
    /// Bytes of memory (`MemoryMax=`, `memory.max`, `memory.limit_in_bytes`).
    public var memoryMax: UInt64?
    /// CPUs (`CPUQuota=` of `cpus` × 100 %, `cpu.max`, `cpu.cfs_quota_us`).
    public var cpus: Double?
    /// Processes and threads (`TasksMax=`, `pids.max`).
    public var tasksMax: UInt64?

    public init(memoryMax: UInt64? = nil, cpus: Double? = nil, tasksMax: UInt64? = nil) {
        self.memoryMax = memoryMax
        self.cpus = cpus
        self.tasksMax = tasksMax
    }

    /// Whether nothing is limited.
    public var isEmpty: Bool { memoryMax == nil && cpus == nil && tasksMax == nil }

    /// These ceilings, lowered to what a job asked for (`--memory`, `--cpus`): a job may ask for
    /// less than the administrator allows, never for more.
    public func narrowed(to requested: GuestLimits?) -> GuestLimits {
        guard let requested else { return self }
        func lower<T: Comparable>(_ a: T?, _ b: T?) -> T? {
            switch (a, b) {
            case (let a?, let b?): min(a, b)
            case (let a?, nil): a
            case (nil, let b?): b
            case (nil, nil): nil
            }
        }
        return GuestLimits(
            memoryMax: lower(memoryMax, requested.memoryMax), cpus: lower(cpus, requested.cpus),
            tasksMax: lower(tasksMax, requested.tasksMax))
    }

    /// What a job asked for (`--memory`, `--cpus`), each lowered to these ceilings; what it did
    /// not ask for stays unset (the job's own limits bound it already).
    public func requested(_ requested: GuestLimits?) -> GuestLimits {
        guard let requested else { return GuestLimits() }
        let lowered = narrowed(to: requested)
        return GuestLimits(
            memoryMax: requested.memoryMax == nil ? nil : lowered.memoryMax,
            cpus: requested.cpus == nil ? nil : lowered.cpus,
            tasksMax: requested.tasksMax == nil ? nil : lowered.tasksMax)
    }

    /// The CPU quota in microseconds per 100 ms period (`cpus` × 100000), at least 1000.
    public var cpuQuotaMicroseconds: UInt64? {
        cpus.map { UInt64(max(1000, ($0 * 100_000).rounded())) }
    }

    /// These limits as systemd unit properties: `MemoryMax=BYTES`, `CPUQuota=N%` (CPUs × 100 %),
    /// `TasksMax=N`, for the limits that are set.
    public var unitProperties: [String] {
        var properties: [String] = []
        if let memoryMax { properties.append("MemoryMax=\(memoryMax)") }
        if let quota = cpuQuotaMicroseconds { properties.append("CPUQuota=\(quota / 1000)%") }
        if let tasksMax { properties.append("TasksMax=\(tasksMax)") }
        return properties
    }
}
