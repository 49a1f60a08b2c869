import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerImages
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

extension Trait where Self == ConditionTrait {
    /// Skips unless no-init guests can run: root, systemd-nspawn, a static busybox to build the
    /// image from, and the built runner-agent.
    static var ociGuests: Self {
        .enabled(
            if: TestHost.isRoot && TestHost.which("systemd-nspawn") != nil && FilePaths.exists(OCIHarness.busybox)
                && BuiltProducts.runnerAgent != nil && BuiltProducts.runnerHook != nil,
            "needs root, systemd-nspawn, busybox-static (/usr/bin/busybox) and the built runner-agent and runner-hook")
    }
}

/// A runner tree whose registry images are busybox-static trees laid out as the content store
/// holds them (`images/.oci/trees/<hex>/{rootfs,config.json}`, owners shifted to the guests'
/// range), and a stand-in for `ci-nspawn-run pull` at the layout's helper path that answers
/// with those trees and records what it was given. The hook is the built `runner-agent`, run as
/// root (guests in process, each with its step relay, as in the bench).
final class OCIHarness: Sendable {
    static let busybox = "/usr/bin/busybox"

    let dir: TemporaryDirectory
    let layout: HostLayout
    let ownerProcess: ChildProcess
    var owner: pid_t { ownerProcess.pid }
    var work: String { layout.workDirectory }
    /// The stand-in puller's records: its arguments and its stdin, one line per call.
    var pullArguments: String { dir.appending("pull-argv.log") }
    var pullInput: String { dir.appending("pull-stdin.log") }

    init() async throws {
        dir = try TemporaryDirectory("oci")
        layout = dir.layout
        for sub in [
            "_temp/_runner_file_commands", "_temp/_github_home", "_temp/_github_workflow", "_tool", "_actions",
            "octo-repo/octo-repo", "_srv_cache",
        ] {
            try FilePaths.createDirectory(layout.workDirectory + "/" + sub)
        }
        try FilePaths.createDirectory(layout.runnerExternalsDirectory + "/node20/bin")
        try AtomicFile.write("", to: layout.configFile)
        try FilePaths.createDirectory(layout.ociTreesDirectory)
        ownerProcess = try Spawner.spawn(
            Command("sleep", ["3600"]), options: SpawnOptions(standardOutput: .devNull, standardError: .devNull))
        try writePuller(images: [:])
    }

    /// Runs `body` with a fresh harness and always finishes it.
    static func with(_ body: (OCIHarness) async throws -> Void) async throws {
        let h = try await OCIHarness()
        do {
            try await body(h)
        } catch {
            await h.finish()
            throw error
        }
        await h.finish()
    }

    func finish() async {
        ownerProcess.signal(SIGKILL)
        _ = await ownerProcess.wait()
        await GuestManager(policy: GuestPolicy(layout: layout), logger: .init(label: "test")).gc(all: true)
        // The filter table of this root's names (host-global; gc sets it up, nothing else removes it).
        _ = try? await SystemCommandRunner().run(
            Nft().deleteTable(family: "inet", name: GuestNetworkNames(layout: layout).table))
        dir.remove()
    }

    /// Images the stand-in puller knows: reference → manifest hex.
    private let known = Mutex<[String: String]>([:])

    /// Lays a busybox-static image for `reference` into the content store: `/bin` with every
    /// applet, `/usr`, `/etc/passwd` (root, `app` 1000), `/etc/group`, `/tmp`, an
    /// `/etc/os-release` saying `osID`, then `customize(rootfs)`; `config` is written as
    /// `config.json`; owners are shifted to the standard range. Returns the manifest digest.
    @discardableResult
    func addImage(
        _ reference: String, config: String, osID: String = "alpine", customize: (String) throws -> Void = { _ in }
    ) async throws -> String {
        let hex = SHA256Digest.hex(of: Array((reference + dir.path).utf8))
        let tree = layout.ociTree(hex)
        let rootfs = tree + "/rootfs"
        let script = """
            set -e
            r="$1"
            mkdir -p "$r/bin" "$r/usr/bin" "$r/etc" "$r/root" "$r/home/app" "$r/tmp" "$r/var" "$r/proc" "$r/sys" "$r/dev" "$r/run"
            cp \(Self.busybox) "$r/bin/busybox"
            for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
            printf 'root:x:0:0:root:/root:/bin/sh\\napp:x:1000:1000:app:/home/app:/bin/sh\\n' > "$r/etc/passwd"
            printf 'root:x:0:\\napp:x:1000:\\nextra:x:2000:app\\n' > "$r/etc/group"
            printf 'ID=\(osID)\\nNAME="test"\\n' > "$r/etc/os-release"
            chown 1000:1000 "$r/home/app"; chmod 1777 "$r/tmp"
            """
        let build = Command("/bin/sh", ["-c", script, "sh", rootfs])
        try await SystemCommandRunner().run(build).checked(build)
        try customize(rootfs)
        try ImageOwnership.shift(root: rootfs, from: GuestUserNamespace(base: 0, size: 65536), to: .standard)
        try AtomicFile.write(config, to: tree + "/config.json")
        let now = Int64(time(nil)) - 3600
        try PulledImageRecord(
            references: [reference], digest: "sha256:" + hex, indexDigest: nil, platform: "linux/amd64", blobs: [],
            size: 1_000_000, pulled: now, lastUsed: now
        ).write(to: tree + "/image.json")
        let images = known.withLock { images in
            images[reference] = hex
            return images
        }
        try writePuller(images: images)
        return "sha256:" + hex
    }

    /// The stand-in for `ci-nspawn-run pull` (the registry client is built separately): records
    /// its arguments and stdin, prints a progress line on stderr and answers the agreed JSON
    /// line for a known reference; an unknown one fails as a registry would. Asked
    /// `--store-only`, it answers that the store has nothing (the hook then pulls).
    func writePuller(images: [String: String]) throws {
        var cases = ""
        for (reference, hex) in images.sorted(by: { $0.key < $1.key }) {
            let answer =
                "{\"reference\":\(TestJSON.quote(reference)),\"digest\":\"sha256:\(hex)\",\"tree\":\"\(layout.ociTree(hex))\"}"
            cases += "  *'\"reference\":\(TestJSON.quote(reference))'*) echo '\(answer)';;\n"
        }
        let script = """
            #!/bin/sh
            [ "$1" = pull ] || exit 64
            printf '%s\\n' "$*" >> \(pullArguments)
            line=$(cat)
            printf '%s\\n' "$line" >> \(pullInput)
            [ "$2" = --store-only ] && exit 0
            echo "pulling: resolving manifest" >&2
            case "$line" in
            \(cases)  *) echo "registry.test: manifest unknown: the registry has no such image" >&2; exit 1;;
            esac

            """
        try FilePaths.createDirectory(FilePaths.parent(of: layout.guestHelper))
        try AtomicFile.write(script, to: layout.guestHelper, mode: 0o755)
    }

    var environment: [String: String?] {
        ["RUNNER_HOST_ROOT": layout.root, "RUNNER_HOOK_OWNER_PID": "\(owner)", "RUNNER_WORK_OWNER": "0:0"]
    }

    /// Starts the hook with `json` on stdin.
    func spawnHook(_ json: String) throws -> (process: ChildProcess, stdout: String, stderr: String) {
        let out = dir.appending("out-\(UInt32.random(in: 0...UInt32.max))")
        var command = Command(try #require(BuiltProducts.runnerHook), [])
        command.environment = environment
        command.workingDirectory = work + "/octo-repo/octo-repo"
        let process = try Spawner.spawn(
            command,
            options: SpawnOptions(
                standardInput: .bytes(Array((json + "\n").utf8)), standardOutput: .file(out + ".stdout"),
                standardError: .file(out + ".stderr")))
        return (process, out + ".stdout", out + ".stderr")
    }

    struct Result {
        var status: RunnerCore.ExitStatus
        var stdout: String
        var stderr: String
    }

    func hook(_ json: String) async throws -> Result {
        let (process, stdout, stderr) = try spawnHook(json)
        let status = await process.wait()
        return Result(
            status: status, stdout: String(decoding: (try? FilePaths.read(stdout)) ?? [], as: UTF8.self),
            stderr: String(decoding: (try? FilePaths.read(stderr)) ?? [], as: UTF8.self))
    }

    var payloads: HookPayloads { HookPayloads(work: work, externals: layout.runnerExternalsDirectory, servicePort: 1) }

    func newResponseFile() throws -> String {
        let path = work + "/_temp/_runner_hook_responses/\(UInt32.random(in: 0...UInt32.max)).json"
        try AtomicFile.write("", to: path)
        return path
    }

    /// prepare_job (the fixture, its registry credentials kept) with the job image `image` and
    /// `services`; returns the result and the response file's text.
    func prepare(image: String?, services: String = "", options: String? = nil) async throws -> (Result, String) {
        let responseFile = try newResponseFile()
        var json = try payloads.prepareJob(responseFile: responseFile, services: services, image: image ?? "unused")
        if let options {
            let fixture = try #require(json.firstRange(of: "\"createOptions\":\"--cpus 1\""))
            json.replaceSubrange(fixture, with: "\"createOptions\":" + TestJSON.quote(options))
        }
        if image == nil {
            let start = try #require(json.firstRange(of: "\"container\":{"))
            let end = try #require(json.firstRange(of: ",\"services\":["))
            json = String(json[..<start.lowerBound]) + "\"container\":null" + String(json[end.lowerBound...])
        }
        let result = try await hook(json)
        let response = String(decoding: (try? FilePaths.read(responseFile)) ?? [], as: UTF8.self)
        return (result, response)
    }

    /// A run_script_step of `args` (run by `sh`) in `guest`, with the state's environment.
    func step(
        _ args: [String], guest: String, stateEnvironment: String,
        workingDirectory: String? = "/__w/octo-repo/octo-repo",
        prependPath: [String] = ["/__w/bin"], entryPoint: String = "sh"
    ) -> String {
        let quoted = { (items: [String]) in "[" + items.map { TestJSON.quote($0) }.joined(separator: ",") + "]" }
        // The state names the guest's relay, as prepare_job's does: runner-hook goes straight there.
        return """
            {"command":"run_script_step","responseFile":null,"args":{"entryPoint":\(TestJSON.quote(entryPoint)),\
            "entryPointArgs":\(quoted(args)),"environmentVariables":{"FROM_STEP":"s"},\
            "prependPath":\(quoted(prependPath)),"workingDirectory":\(workingDirectory.map(TestJSON.quote) ?? "null")},\
            "state":{"guest":"\(guest)","services":[],"environment":\(stateEnvironment),\
            "relay":\(TestJSON.quote(layout.guestRelaySocket(guest)))}}
            """
    }

    func cleanup(state: String) async throws -> Result {
        try await hook(try payloads.cleanupJob(state: state))
    }
}
