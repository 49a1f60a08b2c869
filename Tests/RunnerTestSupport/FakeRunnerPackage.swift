import FoundationEssentials
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A test-made runner package: the fake config.sh/run.sh under the layout's runner directory,
/// with `.fake/` holding the API URL, the exit-code script and what the scripts recorded.
public struct FakeRunnerPackage {
    public let directory: String
    public var fake: String { directory + "/.fake" }

    public init(layout: HostLayout, apiURL: String, script: [String] = [], sleep: String = "0.3") throws {
        directory = layout.runnerDirectory
        try FilePaths.createDirectory(fake)
        // Copied by a separate process: a file this (multithreaded) test process wrote could still
        // be open in a child another test is forking, and exec would then fail with ETXTBSY.
        let copy = try TestProcess.start(
            Command("cp", [Fixtures.fakeRunner + "/config.sh", Fixtures.fakeRunner + "/run.sh", directory + "/"]),
            environment: ["PATH": "/usr/bin:/bin"])
        guard copy.waitBlocking() == .exited(0) else {
            throw RunnerError(.io, input: directory, problem: "could not copy the fake runner scripts")
        }
        try AtomicFile.write(apiURL, to: fake + "/api")
        try AtomicFile.write(sleep, to: fake + "/sleep")
        try AtomicFile.write(script.map { $0 + "\n" }.joined(), to: fake + "/script")
    }

    /// Lines of `.fake/calls`: `config.sh ARGS` / `run.sh ARGS`.
    public var calls: [String] {
        guard let bytes = try? FilePaths.read(fake + "/calls") else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The environments recorded by the scripts (`env.config.*` or `env.run.*`), oldest first.
    public func environments(_ kind: String) -> [[String: String]] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: fake)) ?? [])
            .filter { $0.hasPrefix("env.\(kind).") }.sorted()
        return names.map { name in
            let text = String(decoding: (try? FilePaths.read(fake + "/" + name)) ?? [], as: UTF8.self)
            var values: [String: String] = [:]
            for line in text.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                values[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
            return values
        }
    }

    public var signals: String { String(decoding: (try? FilePaths.read(fake + "/signals")) ?? [], as: UTF8.self) }
}
