import Foundation
import RunnerCore
import RunnerTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The one place that makes the cloud-init test guest's tree from `images/cloud-init-test/`.
///
/// Today it reads the recipe's suite, variant, mirror and packages and runs mmdebstrap itself,
/// then copies the overlay; when `runner-build rootfs` (branch `rootfs`) is merged, this is the
/// function to switch to it. Trees are cached under `/var/cache/runner-tests/`, keyed by the
/// recipe and overlay bytes, so reruns take no time.
enum GuestTree {
    static let recipeDirectory = Repo.root + "/images/cloud-init-test"
    static let cacheRoot = "/var/cache/runner-tests"

    /// Whether this machine can build and boot guests.
    static var available: Bool {
        TestHost.isRoot && TestHost.which("systemd-nspawn") != nil && TestHost.which("mmdebstrap") != nil
            && TestHost.which("nsenter") != nil
    }

    /// The tree, built when missing.
    static func cloudInitTest() async throws -> String {
        let recipe = try String(decoding: FilePaths.read(recipeDirectory + "/recipe.conf"), as: UTF8.self)
        var scalars: [String: String] = [:]
        var packages: [String] = []
        for raw in recipe.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if key == "packages" {
                packages += value.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            } else {
                scalars[key] = value
            }
        }
        let overlay = recipeDirectory + "/overlay"
        var keyMaterial = Array(recipe.utf8)
        let files = FileManager.default.enumerator(atPath: overlay)?.compactMap { $0 as? String }.sorted() ?? []
        for file in files where !file.hasSuffix("/") {
            var isDirectory = false
            if FilePaths.exists(overlay + "/" + file, isDirectory: &isDirectory), !isDirectory {
                keyMaterial += Array(file.utf8) + [0] + (try FilePaths.read(overlay + "/" + file))
            }
        }
        let key = String(SHA256Digest.hex(of: keyMaterial).prefix(16))
        let tree = "\(cacheRoot)/cloud-init-test-\(key)"
        if FilePaths.exists(tree + "/usr/bin/cloud-init") { return tree }

        let temporary = "\(cacheRoot)/.cloud-init-test-\(key).tmp-\(getpid())"
        try FilePaths.remove(temporary)
        try FilePaths.createDirectory(cacheRoot)
        let build = Command(
            "mmdebstrap",
            [
                "--quiet", "--mode=root", "--variant=\(scalars["variant"] ?? "minbase")",
                "--architectures=\(scalars["architecture"] ?? "amd64")",
                "--components=\(scalars["components"] ?? "main")", "--include=" + packages.joined(separator: ","),
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", scalars["suite"] ?? "bookworm", temporary,
                scalars["mirror"] ?? "http://deb.debian.org/debian",
            ], environment: ["LC_ALL": "C.UTF-8"])
        let result = try await SubprocessCommandRunner().run(build)
        guard result.status.isSuccess else {
            try? FilePaths.remove(temporary)
            throw RunnerError.commandFailed(build, status: result.status, stderr: result.standardError)
        }
        let copy = try await runTool("cp", ["-a", overlay + "/.", temporary + "/"])
        try copy.checked(Command("cp"))
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
