/// The version of this source tree's tools, printed by `--version`.
///
/// Release bundles carry their own version (`runner-build bundle --version`); this one names
/// the code. Bump it with each tagged release.
public enum RunnerVersion {
    public static let current = "0.1.0"
}
