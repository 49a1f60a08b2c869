import RunnerArchive
import RunnerBuildKit
import RunnerCore
import RunnerSystem
import RunnerTestSupport
import Testing

/// bsdtar and GNU tar list the bundle the same way our reader does: names, types, modes,
/// sizes and owners.
@Suite struct BundleIndependentReaderTests {
    struct Line: Hashable, CustomStringConvertible {
        var mode: String
        var owner: String
        var size: Int64
        var name: String
        var description: String { "\(mode) \(owner) \(size) \(name)" }
    }

    static func ours(_ path: String) throws -> [Line] {
        try ArchiveReader.list(path).map { entry in
            Line(
                mode: entry.modeString, owner: "\(entry.userName ?? "")/\(entry.groupName ?? "")", size: entry.size,
                name: entry.path + (entry.kind == .symlink ? " -> \(entry.linkTarget ?? "")" : ""))
        }
    }

    static func run(_ executable: String, _ arguments: [String]) async throws -> [String] {
        let command = Command(executable, arguments, environment: ["LC_ALL": "C", "TZ": "UTC"])
        let text = try await SystemCommandRunner().output(command)
        return text.split(separator: "\n").map(String.init)
    }

    /// `drwxr-xr-x  0 root   root        0 Nov 14  2023 bin/`
    static func bsdtar(_ path: String) async throws -> [Line] {
        try await run("bsdtar", ["-tvf", path]).map { line in
            let fields = line.split(separator: " ", maxSplits: 8, omittingEmptySubsequences: true)
            return Line(
                mode: String(fields[0]), owner: "\(fields[2])/\(fields[3])", size: Int64(fields[4]) ?? -1,
                name: String(fields[8]))
        }
    }

    /// `drwxr-xr-x root/root         0 2023-11-14 22:13 bin/`
    static func gnuTar(_ path: String) async throws -> [Line] {
        try await run("tar", ["-tvzf", path]).map { line in
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            return Line(
                mode: String(fields[0]), owner: String(fields[1]), size: Int64(fields[2]) ?? -1, name: String(fields[5])
            )
        }
    }

    @Test(.requires("bsdtar"), .requires("tar"))
    func independentReadersAgree() async throws {
        try await withTemporaryDirectory("readers") { dir in
            let output = try BundleBuilder().build(try inputs(dir))
            let ours = try Self.ours(output.path)
            #expect(ours.count == BundleLayout.files.count + 2)  // and MANIFEST.json, bin/
            #expect(try await Self.bsdtar(output.path) == ours)
            #expect(try await Self.gnuTar(output.path) == ours)
        }
    }
}
