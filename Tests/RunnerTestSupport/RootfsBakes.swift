import RunnerCore
import RunnerSystem
import Testing

/// Runs the real `runner-build` binary (built beside this test binary) and shares one bake of
/// `images/debian-bookworm` between tests and CI runs: `runner-build rootfs` itself reuses an
/// output whose recipe digest is unchanged, so the cache directory is keyed by that digest.
public enum RootfsBakes {
    public static let cacheDirectory = "/var/cache/runner-tests/rootfs"
    public static let sourceDateEpoch = "1747699200"
    public static let version = "test"

    /// The repository checkout the tests were built from, when it is there.
    public static var repositoryRoot: String? {
        FilePaths.exists(Repo.root + "/Package.swift") ? Repo.root : nil
    }

    /// `runner-build` next to the running test binary (`swift build --build-tests` builds both).
    public static var runnerBuild: String? { BuiltProducts.runnerBuild }

    /// Whether the checkout and the binary are there.
    public static var available: Bool { repositoryRoot != nil && runnerBuild != nil }

    /// `runner-build ARGUMENTS` with `SOURCE_DATE_EPOCH` set unless `environment` sets it.
    public static func command(_ arguments: [String], environment: [String: String?] = [:]) throws -> Command {
        let binary = try #require(runnerBuild, "runner-build is built beside the tests")
        var env = environment
        if env["SOURCE_DATE_EPOCH"] == nil { env["SOURCE_DATE_EPOCH"] = sourceDateEpoch }
        return Command(binary, arguments, environment: env)
    }

    /// `runner-build rootfs RECIPE --version test --out OUT [--force]`.
    public static func bake(recipe: String, out: String, force: Bool = false) async throws -> CommandResult {
        let command = try command(
            ["rootfs", recipe, "--version", version, "--out", out] + (force ? ["--force"] : []))
        return try await SystemCommandRunner().run(command)
    }

    /// The shared bake of images/debian-bookworm: (archive, manifest).
    public static func shared() async throws -> (archive: String, manifest: String) {
        let root = try #require(repositoryRoot)
        let result = try await bake(recipe: root + "/images/debian-bookworm", out: cacheDirectory)
        try #require(result.status.isSuccess, "bake failed:\n\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        try #require(lines.count >= 2, "runner-build prints the archive and manifest paths")
        return (lines[lines.count - 2], lines[lines.count - 1])
    }
}
