import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// A docker health check (`--health-*`), with docker's defaults.
public struct HealthCheck: Sendable, Hashable {
    /// Run as `/bin/sh -c COMMAND` in the service's guest (docker's CMD-SHELL form).
    public var command: String
    public var interval: Double = 30
    public var timeout: Double = 30
    public var retries: Int = 3
    public var startPeriod: Double = 0

    public init(command: String) { self.command = command }

    /// The longest the check can take: the start period, then every retry with its interval.
    public var bound: Double { startPeriod + Double(retries + 1) * (interval + timeout) }
}
