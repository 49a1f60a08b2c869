import Foundation
import RunnerCore
import RunnerTestSupport

@testable import RunnerBuildKit
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The one place that makes the trees of the guests that stand in for cloud VMs, from their
/// recipes in `images/`: `cloud-init-test` (the user-data suites) and `appliance-host` (the
/// appliance end to end).
///
/// It uses the rootfs pipeline's own pieces: the recipe parser (`Recipe`), the recipe digest
/// and the mmdebstrap invocation with its guest-ready hooks (`RootfsBaker`), writing a
/// directory instead of a `.tar.zst` (the archive round trip is the rootfs tests' business and
/// would only slow this one down). Trees are cached under `/var/cache/runner-tests/`, keyed by
/// the recipe digest, so reruns take no time.
enum GuestTree {
    static let recipeDirectory = Repo.root + "/images/cloud-init-test"
    static let cacheRoot = "/var/cache/runner-tests"
    static let sourceDateEpoch: Int64 = 1_700_000_000

    /// The cloud-init test guest's tree, built when missing.
    static func cloudInitTest() async throws -> String {
        try await tree(recipe: recipeDirectory, marker: "/usr/bin/cloud-init")
    }

    /// The appliance suite's cloud VM (`images/appliance-host`), built when missing.
    static func applianceHost() async throws -> String {
        try await tree(recipe: Repo.root + "/images/appliance-host", marker: "/usr/bin/cloud-init")
    }

    /// The tree of the recipe in `directory`, built when it lacks `marker`.
    static func tree(recipe directory: String, marker: String) async throws -> String {
        let recipe = try Recipe.load(directory: directory)
        let name = FilePaths.basename(directory)
        let digest = try RootfsBaker.recipeDigest(recipe, sourceDateEpoch: sourceDateEpoch)
        let tree = "\(cacheRoot)/\(name)-\(digest.prefix(16))"
        if FilePaths.exists(tree + marker) { return tree }

        let temporary = "\(cacheRoot)/.\(name)-\(digest.prefix(16)).tmp-\(getpid())"
        try FilePaths.remove(temporary)
        try FilePaths.createDirectory(cacheRoot)
        let build = RootfsBaker().mmdebstrapCommand(for: recipe, target: temporary, sourceDateEpoch: sourceDateEpoch)
        let result = try await SystemCommandRunner().run(build)
        guard result.status.isSuccess else {
            try? FilePaths.remove(temporary)
            throw RunnerError.commandFailed(build, status: result.status, stderr: result.standardError)
        }
        guard rename(temporary, tree) == 0 else { throw RunnerError.posix("could not rename", tree, fix: nil) }
        return tree
    }
}

/// A guest booted with `systemd-nspawn -b` on the build machine (no machined: `--register=no`).
struct BootedGuest {
    let nspawnPID: Int32
    let leader: Int32
    let log: String

    /// Boots `tree` read-only under a volatile overlay with `binds` (`--bind-ro=` values).
    static func boot(_ tree: String, binds: [String], log: String) async throws -> BootedGuest {
        var arguments = [
            "--quiet", "--register=no", "--keep-unit", "-D", tree, "--volatile=overlay", "-b", "--console=passive",
            "--machine=runner-cloud-init-test",
        ]
        arguments += binds.map { "--bind-ro=\($0)" }
        let quoted = (["systemd-nspawn"] + arguments).map(Command.shellQuoted).joined(separator: " ")
        let started = try await runTool(
            "sh", ["-c", "\(quoted) </dev/null >\(Command.shellQuoted(log)) 2>&1 & echo $!"])
        guard let pid = Int32(started.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw RunnerError(.commandFailed, input: "systemd-nspawn", problem: "did not start")
        }
        for _ in 0..<400 {
            if let leader = findLeader(below: pid) {
                return BootedGuest(nspawnPID: pid, leader: leader, log: log)
            }
            if kill(pid, 0) != 0 { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        kill(pid, SIGKILL)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        throw RunnerError(.timeout, input: "systemd-nspawn", problem: "the guest did not start: \(text)")
    }

    /// The process that is PID 1 in a new PID namespace and descends from `ancestor`.
    static func findLeader(below ancestor: Int32) -> Int32? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry),
                let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let nspid = status.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") })
            else { continue }
            let ids = nspid.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst()
            guard ids.count >= 2, ids.last == "1" else { continue }
            var current = pid
            for _ in 0..<8 {
                guard let parent = parentPID(current) else { break }
                if parent == ancestor { return pid }
                current = parent
            }
        }
        return nil
    }

    static func parentPID(_ pid: Int32) -> Int32? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") })
        else { return nil }
        return Int32(line.dropFirst(5).trimmingCharacters(in: .whitespaces))
    }

    /// Runs `argv` inside the guest (all its namespaces).
    func run(_ argv: [String]) async throws -> CommandResult {
        try await runTool("nsenter", ["-t", "\(leader)", "-a"] + argv)
    }

    /// SIGTERM to nspawn (the guest powers off), SIGKILL after 15 s.
    func stop() async {
        kill(nspawnPID, SIGTERM)
        for _ in 0..<150 {
            if kill(nspawnPID, 0) != 0 { return }
            try? await Task.sleep(for: .milliseconds(100))
        }
        kill(nspawnPID, SIGKILL)
    }
}
