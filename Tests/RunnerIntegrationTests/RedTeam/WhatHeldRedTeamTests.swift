import Foundation
import FoundationEssentials
import Logging
import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerImages
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Issue #10's "what held" list, performed as attacks against canaries the tests own, so that
/// it keeps holding: the kernel's protected hard links, no secret in `settings`, sudo's
/// environment reset as the helper sees it, named-volume names. The guest-booting half is
/// ``GuestSuites/WhatHeldRedTeamGuestTests``.
@Suite struct WhatHeldRedTeamTests {
    /// The second, unprivileged user of these tests (no other suite uses it).
    static let attacker: UInt32 = 4343

    /// Secrets config.env may hold; none may ever reach the runner user through the helper.
    static let secrets = [
        "ghp_whatheldcanarypat0001", "AWHATHELDCANARYREGISTRATIONTOKEN01", "whatheld-canary-jit-config-0001",
        "-----BEGIN WHATHELD CANARY KEY-----",
    ]

    /// Runs the built agent as `ci-nspawn-run ARGS` (a link named so in `dir`) with `environment`
    /// added to ours.
    static func helper(
        _ arguments: [String], in dir: TemporaryDirectory, environment: [String: String?]
    ) async throws -> CommandResult {
        let link = dir.appending("ci-nspawn-run")
        if !FilePaths.exists(link) { symlink(try #require(HookHarness.agent), link) }
        var command = Command(link, arguments)
        command.environment = environment
        return try await SystemCommandRunner().run(command)
    }

    static var agentAsRoot: Bool { TestHost.isRoot && HookHarness.agent != nil }

    /// Protected hard links: the runner user cannot make a hard link in a directory it owns to
    /// a root-owned file it cannot write (so nothing root does later to "its" file, like the
    /// ownership walk, reaches the canary); linking its own file works (the attempt is real).
    @Test(.requiresRoot, .requires("setpriv"))
    func protectedHardLinksKeepRootFilesOutOfTheWorkTree() async throws {
        let sysctl = String(decoding: try FilePaths.read("/proc/sys/fs/protected_hardlinks"), as: UTF8.self)
        #expect(sysctl == "1\n", "fs.protected_hardlinks is off: the runner user can link root's files")
        try await withTemporaryDirectory("held-links") { dir in
            chmod(dir.path, 0o755)
            let secret = dir.appending("canary-secret")
            let readable = dir.appending("canary-readable")
            try AtomicFile.write("canary", to: secret, mode: 0o600)
            try AtomicFile.write("canary", to: readable, mode: 0o644)
            let work = dir.appending("work")
            try FilePaths.createDirectory(work, mode: 0o755)
            chown(work, Self.attacker, Self.attacker)
            func asAttacker(_ script: String) async throws -> CommandResult {
                let command = Command(
                    "setpriv",
                    [
                        "--reuid=\(Self.attacker)", "--regid=\(Self.attacker)", "--clear-groups", "--", "/bin/sh", "-c",
                        script,
                    ])
                return try await SystemCommandRunner().run(command)
            }
            for canary in [secret, readable] {
                let linked = try await asAttacker("ln \(canary) \(work)/link")
                #expect(linked.status != .exited(0), "the runner user hard-linked \(canary)")
                #expect(linked.standardError.contains("Operation not permitted"), "\(linked.standardError)")
                #expect(!FilePaths.exists(work + "/link"))
                var st = stat()
                #expect(lstat(canary, &st) == 0 && st.st_nlink == 1 && st.st_uid == 0)
            }
            let own = try await asAttacker("echo x > \(work)/own && ln \(work)/own \(work)/own-link")
            #expect(own.status == .exited(0), "\(own.standardError)")
        }
    }

    /// `ci-nspawn-run settings` (which the runner user may run through sudo) prints the hook's
    /// few keys and no secret, even with every kind of secret in config.env, and also when
    /// config.env has a line it cannot parse.
    @Test(.enabled(if: agentAsRoot, "needs root and the built runner-agent"))
    func settingsPrintNoSecret() async throws {
        try await withTemporaryDirectory("held-settings") { dir in
            let layout = dir.layout
            let keyFile = dir.appending("app-key.pem")
            try AtomicFile.write(Self.secrets[3] + "\nMIIcanary\n", to: keyFile, mode: 0o600)
            let patFile = dir.appending("pat")
            try AtomicFile.write(Self.secrets[0] + "\n", to: patFile, mode: 0o600)
            let config = """
                RUNNER_PAT=\(Self.secrets[0])
                RUNNER_PAT_FILE=\(patFile)
                RUNNER_REGISTRATION_TOKEN=\(Self.secrets[1])
                RUNNER_JIT_CONFIG=\(Self.secrets[2])
                RUNNER_APP_PRIVATE_KEY_FILE=\(keyFile)
                RUNNER_IMAGE_ALIASES=ghcr.io/octo-org/ci-image:1.4=job

                """
            let environment: [String: String?] = ["RUNNER_HOST_ROOT": layout.root]
            try AtomicFile.write(config, to: layout.configFile, mode: 0o600)
            let settings = try await Self.helper(["settings"], in: dir, environment: environment)
            #expect(settings.status == .exited(0), "\(settings.standardError)")
            #expect(settings.standardOutput.contains("ghcr.io"), "\(settings.standardOutput)")
            // A line config.env cannot parse, next to the secrets: the error names no secret either.
            for broken in [
                config + "RUNNER_DEFAULT_IMAGE=\"unterminated\n", "RUNNER_PAT=\"\(Self.secrets[0])\n" + config,
                config + "RUNNER_REGISTRATION_TOKEN='\(Self.secrets[1])\n",
            ] {
                try AtomicFile.write(broken, to: layout.configFile, mode: 0o600)
                let failed = try await Self.helper(["settings"], in: dir, environment: environment)
                for text in [failed.standardOutput, failed.standardError] {
                    for secret in Self.secrets + ["MIIcanary"] {
                        #expect(!text.contains(secret), "settings printed a secret: \(text)")
                    }
                }
            }
            for text in [settings.standardOutput, settings.standardError] {
                for secret in Self.secrets + ["MIIcanary", patFile, keyFile] {
                    #expect(!text.contains(secret), "settings printed \(secret): \(text)")
                }
            }
        }
    }

    /// sudo's environment reset, as the helper sees it: called through sudo (`SUDO_UID` set)
    /// the helper ignores `RUNNER_HOST_ROOT` (and `RUNNER_WORK_OWNER`), so a caller cannot point
    /// it at a config, store or state tree of its own. Read-only commands only: through "sudo"
    /// the helper works on this machine's real layout.
    @Test(.enabled(if: agentAsRoot, "needs root and the built runner-agent"))
    func throughSudoTheCallersLayoutIsIgnored() async throws {
        try await withTemporaryDirectory("held-sudo") { dir in
            let layout = dir.layout
            try AtomicFile.write(
                "RUNNER_IMAGE_ALIASES=whatheld-canary-alias=job\nRUNNER_GUEST_MOUNT_ALLOW=/whatheld-canary-root\n",
                to: layout.configFile, mode: 0o600)
            let caller: [String: String?] = ["RUNNER_HOST_ROOT": layout.root, "RUNNER_WORK_OWNER": "0:0"]
            let direct = try await Self.helper(["settings"], in: dir, environment: caller)
            #expect(direct.standardOutput.contains("whatheld-canary-alias"), "the control: \(direct.standardOutput)")
            var sudo = caller
            sudo["SUDO_UID"] = "\(Self.attacker)"
            sudo["SUDO_GID"] = "\(Self.attacker)"
            sudo["SUDO_USER"] = "runner"
            sudo["SUDO_COMMAND"] = "/usr/local/bin/ci-nspawn-run settings"
            let throughSudo = try await Self.helper(["settings"], in: dir, environment: sudo)
            for text in [throughSudo.standardOutput, throughSudo.standardError] {
                #expect(!text.contains("whatheld-canary"), "the helper read the caller's config: \(text)")
            }
            // The layout's own paths never show up in what the helper says through sudo.
            let listed = try await Self.helper(["list"], in: dir, environment: sudo)
            #expect(!listed.standardError.contains(layout.root), "\(listed.standardError)")
        }
    }

    /// Named volumes: a name that would climb out of `_runner_volumes` (or is not a plain name)
    /// is refused naming it, and nothing is created where it points.
    @Test func namedVolumeNamesStayInTheVolumeDirectory() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            try FilePaths.createDirectory(layout.workDirectory + "/_runner_volumes")
            let policy = GuestPolicy(layout: layout)
            let hook = ContainerHook(
                settings: HookSettings(), policy: policy,
                guests: LocalGuests(manager: GuestManager(policy: policy, logger: Logger(label: "test"))),
                logger: Logger(label: "test"), ownerPID: getpid())
            for name in ["../canary-x", "..", ".", "a/../../canary-y", "..canary-z", "x\ny", "a b", "$(id)", "~root"] {
                let error = #expect(throws: RunnerError.self, "\(name)") {
                    try hook.binds([MountVolume(source: name, target: "/v")])
                }
                #expect(error?.input == name)
                #expect(error?.problem == "is not a valid volume name")
            }
            for escaped in ["canary-x", "canary-y", "_runner_volumes/..canary-z"] {
                #expect(!FilePaths.exists(layout.workDirectory + "/" + escaped))
            }
            #expect(FilePaths.entries(of: layout.workDirectory + "/_runner_volumes").isEmpty)
            #expect(FilePaths.entries(of: layout.workDirectory) == ["_runner_volumes"])
            // A plain name is fine.
            let binds = try hook.binds([MountVolume(source: "cache-1.x_y", target: "/v")])
            #expect(binds.first?.source == layout.workDirectory + "/_runner_volumes/cache-1.x_y")
        }
    }
}

extension WhatHeldRedTeamTests {
    /// A canary tree outside the tree being removed: `<dir>/canary` with `sub/secret` (0600).
    static func makeCanary(in dir: TemporaryDirectory) throws -> String {
        let canary = dir.appending("canary")
        try FilePaths.createDirectory(canary + "/sub", mode: 0o755)
        try AtomicFile.write("canary", to: canary + "/sub/secret", mode: 0o600)
        try AtomicFile.write("canary", to: canary + "/marker", mode: 0o644)
        return canary
    }

    static func expectCanaryIntact(_ canary: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for file in ["sub/secret", "marker"] {
            #expect(
                (try? FilePaths.read(canary + "/" + file)) == Array("canary".utf8), "\(file) is gone",
                sourceLocation: sourceLocation)
        }
        var st = stat()
        #expect(
            lstat(canary + "/sub", &st) == 0 && st.st_mode & 0o777 == 0o755, "the canary's mode changed",
            sourceLocation: sourceLocation)
    }

    /// A tree like an image's: absolute and relative links to the canary (a directory, a
    /// file, the parent), a directory nobody may enter, and ordinary files.
    static func makeHostileTree(at root: String, canary: String) throws {
        try FilePaths.createDirectory(root + "/etc/alternatives")
        try FilePaths.createDirectory(root + "/usr/bin")
        try AtomicFile.write("x", to: root + "/usr/bin/tool")
        symlink(canary, root + "/etc/alternatives/dir")
        symlink(canary + "/marker", root + "/etc/alternatives/file")
        symlink(canary + "/sub", root + "/usr/sub")
        symlink("../../../../../../../../../../..\(canary)", root + "/usr/relative")
        symlink("/", root + "/host-root")
        try FilePaths.createDirectory(root + "/locked/inner")
        try AtomicFile.write("x", to: root + "/locked/inner/file")
        chmod(root + "/locked/inner", 0)
        chmod(root + "/locked", 0)
    }

    /// Fd-based tree removal: removing an image (its whole store directory) and replacing an
    /// extracted tree go by descriptor and never follow a link in the tree, whatever it points
    /// at; locked directories go too.
    @Test func treeRemovalFollowsNoLink() async throws {
        try await withTemporaryDirectory("held-remove") { dir in
            let canary = try Self.makeCanary(in: dir)
            let layout = dir.layout
            let digest = String(repeating: "0", count: 60) + "dead"
            let rootfs = layout.imageDirectory("hostile") + "/" + digest + "/rootfs"
            try Self.makeHostileTree(at: rootfs, canary: canary)
            symlink(digest, layout.currentImage("hostile"))
            try ImageStore(layout: layout).remove("hostile")
            #expect(!FilePaths.exists(layout.imageDirectory("hostile")))
            #expect(
                FilePaths.entries(of: layout.imagesDirectory).isEmpty,
                "\(FilePaths.entries(of: layout.imagesDirectory))")
            Self.expectCanaryIntact(canary)

            // An extraction replacing a tree that holds the same links: the old tree is removed
            // by descriptor after the exchange.
            let target = dir.appending("target")
            try Self.makeHostileTree(at: target, canary: canary)
            let source = dir.appending("source")
            try FilePaths.createDirectory(source + "/etc")
            try AtomicFile.write("new", to: source + "/etc/new")
            let archive = dir.appending("new.tar")
            let tar = Command("tar", ["-cf", archive, "-C", source, "."])
            try await SystemCommandRunner().run(tar).checked(tar)
            _ = try ArchiveExtractor.extract(archive, into: target, replaceExisting: true)
            #expect(FilePaths.entries(of: target) == ["etc"])
            #expect(try FilePaths.read(target + "/etc/new") == Array("new".utf8))
            #expect(FilePaths.entries(of: dir.path).sorted() == ["canary", "new.tar", "source", "target", "var"])
            Self.expectCanaryIntact(canary)
        }
    }

    /// A from-scratch environment for the runner: whatever the agent's own environment holds
    /// (systemd fills it from config.env; here canaries, and `BASH_ENV`, which bash would
    /// source) never reaches run.sh, which gets only the supervisor's few variables.
    @Test(
        .requiresRoot, .requires("setpriv"), .requires("python3"), .requires("curl"),
        .enabled(if: HookHarness.agent != nil && getpwnam("games") != nil, "needs the built agent and the user games"))
    func theRunnerGetsAFromScratchEnvironment() async throws {
        let token = "AWHATHELDREGISTRATIONTOKEN0001"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["0 0 hold"])
        defer { h.finish() }
        // Its own user: the supervisor kills every process of its runner user before registering.
        _ = try h.handOver(to: "games")
        let sourced = h.directory.appending("bash-env.sh")
        let ran = h.package.fake + "/bash-env-ran"
        try AtomicFile.write("echo ran > \(ran)\n", to: sourced, mode: 0o644)
        try AtomicFile.write(
            """
            RUNNER_GITHUB_URL=\(h.github.baseURL)/acme
            RUNNER_NAME="appliance-held"
            RUNNER_USER=games
            RUNNER_REGISTRATION_TOKEN='\(token)'

            """, to: h.layout.configFile, mode: 0o600)
        let child = try TestProcess.start(
            Command(try #require(HookHarness.agent), ["service", "--root", h.directory.path, "--stop-grace", "2"]),
            environment: [
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                "WHATHELD_CANARY_SECRET": "whatheld-agent-environment", "BASH_ENV": sourced, "ENV": sourced,
                "RUNNER_REGISTRATION_TOKEN_CANARY": token, "LD_AUDIT_CANARY": "x",
            ])
        var ready = false
        for _ in 0..<1000 where !ready {
            ready = !((try? FilePaths.read(h.package.fake + "/ready")) ?? []).isEmpty
            if !ready { try await Task.sleep(for: .milliseconds(10)) }
        }
        kill(child.pid, SIGTERM)
        var status: RunnerCore.ExitStatus?
        let start = ContinuousClock.now
        while status == nil && ContinuousClock.now - start < .seconds(10) {
            status = child.poll()
            try await Task.sleep(for: .milliseconds(20))
        }
        if status == nil {
            kill(child.pid, SIGKILL)
            _ = child.poll()
        }
        #expect(ready, "run.sh never ran: \(String(decoding: child.readAvailableOutput(), as: UTF8.self))")
        let environment = try #require(h.package.environments("run").first)
        #expect(!FilePaths.exists(ran), "run.sh sourced the agent's BASH_ENV")
        // What the supervisor sets, and what bash adds itself.
        let allowed: Set<String> = [
            "PATH", "LANG", "HOME", "USER", "LOGNAME", "ACTIONS_RUNNER_CONTAINER_HOOKS",
            "ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE", "PWD", "SHLVL", "_", "OLDPWD",
        ]
        let extra = Set(environment.keys).subtracting(allowed)
        #expect(extra.isEmpty, "run.sh got \(extra.sorted())")
        for value in environment.values {
            #expect(!value.contains("whatheld-agent-environment") && !value.contains(token) && !value.contains(sourced))
        }
    }
}
