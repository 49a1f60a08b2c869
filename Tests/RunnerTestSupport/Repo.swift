import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Paths of the repository checkout these tests were built from.
public enum Repo {
    /// The repository root (where Package.swift is): three levels above this file,
    /// `Tests/RunnerTestSupport/Repo.swift`.
    public static let root: String = {
        var path = #filePath
        for _ in 0..<3 { path = FilePaths.parent(of: path) }
        return path
    }()

    /// `<root>/cloud-init/NAME`.
    public static func cloudInit(_ name: String) -> String { root + "/cloud-init/" + name }

    /// The text of a repository file.
    public static func text(_ relative: String) throws -> String {
        try String(decoding: FilePaths.read(root + "/" + relative), as: UTF8.self)
    }
}

/// The package's executables, which `swift build --build-tests` puts beside the test binary.
public enum BuiltProducts {
    /// The directory of the running test binary (of its `.xctest` bundle where it is one), or
    /// `<root>/.build/debug` when that cannot be read.
    public static let directory: String = {
        guard let resolved = realpath("/proc/self/exe", nil) else { return Repo.root + "/.build/debug" }
        defer { free(resolved) }
        var path = String(cString: resolved)
        var directory = FilePaths.parent(of: path)
        while path != "/" && !path.isEmpty {
            if path.hasSuffix(".xctest") {
                directory = FilePaths.parent(of: path)
                break
            }
            path = FilePaths.parent(of: path)
        }
        return directory
    }()

    /// `directory/NAME` when it is an executable file there, else nil.
    public static func executable(_ name: String) -> String? {
        let path = directory + "/" + name
        return access(path, X_OK) == 0 ? path : nil
    }

    /// The built `runner-agent`, or nil.
    public static var runnerAgent: String? { executable("runner-agent") }

    /// The built `runner-hook` (what `container-hooks.sh` execs), or nil.
    public static var runnerHook: String? { executable("runner-hook") }

    /// The built `runner-build`, or nil.
    public static var runnerBuild: String? { executable("runner-build") }
}

/// Runs a tool for a test and returns its result (output captured, non-zero exit is data).
public func runTool(
    _ executable: String, _ arguments: [String], environment: [String: String?] = [:], input: [UInt8]? = nil
) async throws -> CommandResult {
    try await SystemCommandRunner().run(
        Command(executable, arguments, environment: environment), input: input, output: .captured)
}
