import RunnerCore

/// The files tests read: `Tests/Fixtures` (reference material copied into the repository, see
/// its README for the source) and `Tests/ServiceFixtures` (the fake GitHub API and the fake
/// runner package). Nothing outside the repository.
public enum Fixtures {
    /// `Tests/Fixtures`.
    public static var directory: String { Repo.root + "/Tests/Fixtures" }

    /// `Tests/ServiceFixtures`.
    public static var serviceDirectory: String { Repo.root + "/Tests/ServiceFixtures" }

    /// The fake GitHub API (`fake_github.py`).
    public static var fakeGitHub: String { serviceDirectory + "/fake_github.py" }

    /// The fake runner package (`config.sh`, `run.sh`).
    public static var fakeRunner: String { serviceDirectory + "/fake-runner" }

    /// A container-hook payload from `Tests/Fixtures/hooks` (`runner-prepare_job.json`,
    /// `upstream-examples/prepare-job.json`, …).
    public static func hook(_ name: String) throws -> [UInt8] {
        try FilePaths.read(directory + "/hooks/" + name)
    }
}
