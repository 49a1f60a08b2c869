import FoundationEssentials
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Facts about the machine the tests run on, for gating integration tests.
public enum TestHost {
    /// Whether the tests run as root.
    public static var isRoot: Bool { geteuid() == 0 }

    /// The absolute path of `name` on `PATH`, or nil.
    public static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        for directory in ["/usr/sbin", "/sbin"] where access("\(directory)/\(name)", X_OK) == 0 {
            return "\(directory)/\(name)"
        }
        return nil
    }

    /// Whether PID 1 is systemd (a real host) rather than a container's init.
    public static var pid1IsSystemd: Bool {
        (try? String(contentsOfFile: "/proc/1/comm", encoding: .utf8))?.hasPrefix("systemd") ?? false
    }
}

extension Trait where Self == ConditionTrait {
    /// Skips the test unless it runs as root.
    public static var requiresRoot: Self {
        .enabled(if: TestHost.isRoot, "needs root (CI runs the suite as root)")
    }

    /// Skips the test unless `executable` is on PATH.
    public static func requires(_ executable: String) -> Self {
        .enabled(if: TestHost.which(executable) != nil, "needs \(executable) (ci/test installs it)")
    }
}
