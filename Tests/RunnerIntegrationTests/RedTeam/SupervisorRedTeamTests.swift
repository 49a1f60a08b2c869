import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Issue #10 route 9: a job leaves a `setsid` loop behind that reads `/proc/*/environ` for the
/// next registration token or JIT configuration. The supervisor must kill every process of the
/// runner user before it registers again, and the secret must reach only `config.sh`/`run.sh`.
///
/// Each test runs the runner as its own system user (the supervisor kills every process of that
/// user, so two tests must not share one).
@Suite(.requires("python3"), .requires("curl"), .requires("setpriv"), .requiresRoot)
struct SupervisorRedTeamTests {
    /// The job: a `setsid` python loop (out of run.sh's process group) that copies every
    /// `ACTIONS_RUNNER_INPUT_*` it can read in `/proc/*/environ` into `.fake/canary`.
    static func leaveEnvironmentSnoop(in package: FakeRunnerPackage, user: passwd) throws {
        let loop = """
            import glob, os, sys, time
            fake = sys.argv[1]
            with open(fake + "/loop.pid", "w") as f:
                f.write(str(os.getpid()))
            while True:
                for path in glob.glob("/proc/[0-9]*/environ"):
                    try:
                        with open(path, "rb") as f:
                            data = f.read()
                    except OSError:
                        continue
                    for entry in data.split(b"\\0"):
                        if entry.startswith(b"ACTIONS_RUNNER_INPUT_"):
                            with open(fake + "/canary", "ab") as out:
                                out.write(entry + b"\\n")
                time.sleep(0.005)

            """
        try AtomicFile.write(loop, to: package.fake + "/snoop.py", mode: 0o644)
        let job = """
            #!/bin/sh
            setsid python3 "$1/snoop.py" "$1" </dev/null >/dev/null 2>&1 &
            i=0
            while [ ! -s "$1/loop.pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done

            """
        // run.sh runs .fake/job with no argument: wrap it.
        try AtomicFile.write(job, to: package.fake + "/job.sh", mode: 0o755)
        try AtomicFile.write(
            "#!/bin/sh\nexec \"\(package.fake)/job.sh\" \"\(package.fake)\"\n", to: package.fake + "/job", mode: 0o755)
        for name in ["snoop.py", "job.sh", "job"] {
            chown(package.fake + "/" + name, user.pw_uid, user.pw_gid)
        }
    }

    /// Whether the loop the job left is still running (as the runner user).
    static func loopIsAlive(_ package: FakeRunnerPackage, uid: uid_t) -> Bool {
        guard let text = try? FilePaths.read(package.fake + "/loop.pid"),
            let pid = Int32(String(decoding: text, as: UTF8.self).trimmedWhitespace)
        else { return false }
        return UserProcesses.live(uid: uid).contains(pid)
    }

    static func cleanUp(uid: uid_t, user: String) async {
        _ = try? await UserProcesses.killAll(uid: uid, user: user)
    }

    @Test(.enabled(if: getpwnam("irc") != nil, "needs the system user irc"))
    func aLeftoverLoopNeverSeesTheNextRegistrationToken() async throws {
        let token = "AGIVENREGISTRATIONTOKENRT09"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["0 0 run", "1 0 run"])
        let user = try h.handOver(to: "irc")
        defer { h.finish() }
        try Self.leaveEnvironmentSnoop(in: h.package, user: user)
        let supervisor = h.supervisor(
            try h.settings(["RUNNER_REGISTRATION_TOKEN": token, "RUNNER_USER": "irc", "RUNNER_EPHEMERAL": "true"]))
        let exit = try await h.run(supervisor, secrets: [token])
        let alive = Self.loopIsAlive(h.package, uid: user.pw_uid)
        await Self.cleanUp(uid: user.pw_uid, user: "irc")
        #expect(exit == .runnerTerminated, "runner output: \(h.output.all), log: \(h.logs.all)")
        #expect(h.package.calls.filter { $0.hasPrefix("config.sh --unattended") }.count == 2)
        #expect(FilePaths.exists(h.package.fake + "/loop.pid"), "the job's loop never started")
        let canary = String(decoding: (try? FilePaths.read(h.package.fake + "/canary")) ?? [], as: UTF8.self)
        #expect(!canary.contains(token), "the leftover loop read the registration token")
        #expect(!alive, "the job's loop survived the next registration")
        #expect(h.logs.all.contains { $0.contains("killed processes the runner user left behind") })
        // config.sh still got its token (the fake registers with it).
        #expect(h.package.environments("config").last?["ACTIONS_RUNNER_INPUT_TOKEN"] == token)
    }

    @Test(.enabled(if: getpwnam("list") != nil, "needs the system user list"))
    func aLeftoverLoopNeverSeesTheNextJITConfiguration() async throws {
        let pat = "ghp_fakepersonalaccesstokenRT09"
        let h = try await ServiceHarness(pats: [pat], script: ["0 0 run", "1 0 run"])
        let user = try h.handOver(to: "list")
        defer { h.finish() }
        try Self.leaveEnvironmentSnoop(in: h.package, user: user)
        let supervisor = h.supervisor(
            try h.settings(["RUNNER_PAT": pat, "RUNNER_USER": "list", "RUNNER_EPHEMERAL": "true"]))
        let exit = try await h.run(supervisor, secrets: [pat])
        let alive = Self.loopIsAlive(h.package, uid: user.pw_uid)
        await Self.cleanUp(uid: user.pw_uid, user: "list")
        #expect(exit == .runnerTerminated, "runner output: \(h.output.all), log: \(h.logs.all)")
        let jits = h.package.environments("run").compactMap { $0["ACTIONS_RUNNER_INPUT_JITCONFIG"] }
        #expect(jits.count == 2, "run.sh gets its JIT configuration")
        let canary = String(decoding: (try? FilePaths.read(h.package.fake + "/canary")) ?? [], as: UTF8.self)
        // The loop may see the JIT configuration of the run that started it (its own job's
        // runner); never the next one.
        if let next = jits.last {
            #expect(!canary.contains(next), "the leftover loop read the next JIT configuration")
        }
        #expect(!alive, "the job's loop survived the next registration")
    }

    /// Neither setpriv nor the shell before its exec carries the secret: only config.sh does.
    @Test(.enabled(if: getpwnam("irc") != nil, "needs the system user irc"))
    func theTokenIsInNoOtherEnvironment() async throws {
        let token = "AGIVENREGISTRATIONTOKENRT9B"
        let invocation = try RunnerPackage(directory: "/opt/actions-runner").configure(
            .init(url: "https://github.com/acme", name: "r", workDirectory: "/w"), token: Secret(token))
        #expect(!invocation.command.argv.contains { $0.contains(token) })
        #expect(!invocation.command.environment.values.contains { $0?.contains(token) == true })
        // The prelude, run for real: the program it execs sees the variable, set from stdin.
        try await withTemporaryDirectory("prelude") { dir in
            let script = dir.appending("show.sh")
            try AtomicFile.write(
                "#!/bin/sh\nprintf '%s|%s' \"$ACTIONS_RUNNER_INPUT_TOKEN\" \"$*\"\n", to: script, mode: 0o755)
            let wrapped = try RunnerPackage.readingSecret(
                "ACTIONS_RUNNER_INPUT_TOKEN", Secret(token), Command(script, ["a b", "c"]))
            let output = try await SystemCommandRunner().output(wrapped.command, input: wrapped.standardInput)
            #expect(output == token + "|a b c")
        }
    }
}
