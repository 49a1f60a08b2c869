import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerBuildKit
@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// What the fake worker (Tests/ServiceFixtures/fake_worker.py) reports of one job.
struct FakeWorkerResults: Decodable {
    struct Call: Decodable {
        var command: String
        var status: Int
        var stdout: String
        var stderr: String
        var response: String
        var seconds: Double
    }
    var calls: [Call]?
    var error: String?
}

/// One job for the fake worker: hook calls built from the fixtures (``HookPayloads``), with
/// the runner's paths as the appliance has them.
struct ApplianceJob {
    static let work = HostLayout.defaultWorkDirectory
    static let workspace = work + "/octo-repo/octo-repo"
    static var payloads: HookPayloads {
        HookPayloads(
            work: work, externals: HostLayout().runnerExternalsDirectory, servicePort: ApplianceRelease.servicePort)
    }

    private var calls: [String] = []

    /// prepare_job: the job container (an alias of image `job`) and, with `service`, one service
    /// (image `svc`).
    mutating func prepare(service: Bool = true) throws {
        // No published port: the job reaches the service by name on its job network. (A port
        // published to the host's 127.0.0.1 needs route_localnet, which the VM here, an nspawn
        // guest with a read-only /proc/sys, cannot set.)
        let payload = try Self.payloads.prepareJob(
            responseFile: "", services: service ? Self.payloads.serviceJSON(image: "svc:1", ports: []) : "[]")
        calls.append(#"{"payload":"# + payload + "}")
    }

    /// A step that waits (≤ 10 s) for the service by name and prints its HTTP status line.
    static var serviceStep: String {
        let port = ApplianceRelease.servicePort
        return """
            for i in $(seq 100); do (exec 3<>/dev/tcp/svc/\(port)) 2>/dev/null && break; sleep 0.1; done
            exec 3<>/dev/tcp/svc/\(port)
            printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3
            head -n1 <&3

            """
    }

    /// A job as a typical workflow has them: the job container and a service, a few short steps
    /// (files in the workspace, output, the service by name), cleanup.
    /// Each step's last line says how long its script ran (`script-ns=`), so the soak can tell
    /// the hook's overhead from the script's own time (the service step may wait for the service).
    static func typical(_ index: Int) throws -> ApplianceJob {
        var job = ApplianceJob()
        try job.prepare()
        for script in [
            "echo job-\(index) > job-\(index).txt\nls -la /__w >/dev/null\n",
            "for i in 1 2 3 4 5; do echo line $i; done\ncat job-\(index).txt\n",
            serviceStep,
        ] {
            try job.step("t0=$(date +%s%N)\n" + script + "echo script-ns=$(( $(date +%s%N) - t0 ))\n")
        }
        try job.cleanup()
        return job
    }

    /// The seconds a step's script ran by its own `script-ns=` line (``typical(_:)``); nil without one.
    static func scriptSeconds(_ stdout: String) -> Double? {
        // By Character `isNewline`: an HTTP line's "\r" and the next "\n" are one Character.
        guard let line = stdout.split(whereSeparator: \.isNewline).last(where: { $0.hasPrefix("script-ns=") }),
            let ns = Double(line.dropFirst(10))
        else { return nil }
        return ns / 1e9
    }

    /// A job without services: one step.
    static func quick(_ script: String) throws -> ApplianceJob {
        var job = ApplianceJob()
        try job.prepare(service: false)
        try job.step(script)
        try job.cleanup()
        return job
    }

    /// Writes the job into the worker's queue as `<queue>/<name>/job.json`.
    func enqueue(_ queue: String, name: String) throws {
        try AtomicFile.write(json, to: queue + "/" + name + "/job.json", mode: 0o644)
        chmod(queue + "/" + name, 0o777)
    }

    /// run_script_step running `script` with `env` added to the step's environment; with
    /// `interruptOn`, the worker sends SIGINT once the hook printed it.
    mutating func step(_ script: String, env: [String: String] = [:], interruptOn: String? = nil) throws {
        let payload = try Self.payloads.runScriptStep(scriptPath: "@SCRIPT@", state: "null")
        var call = #"{"payload":"# + payload + #","script":"# + TestJSON.quote(script)
        call +=
            #","stepEnv":{"#
            + env.sorted { $0.key < $1.key }.map { TestJSON.quote($0.key) + ":" + TestJSON.quote($0.value) }
            .joined(separator: ",") + "}"
        if let interruptOn { call += #","interruptOn":"# + TestJSON.quote(interruptOn) }
        calls.append(call + "}")
    }

    mutating func cleanup() throws {
        calls.append(#"{"payload":"# + (try Self.payloads.cleanupJob(state: "null")) + "}")
    }

    /// job.json.
    var json: String {
        let env = [
            "GITHUB_REPOSITORY": "octo-org/octo-repo", "GITHUB_JOB": "build", "GITHUB_RUN_ID": "4242",
            "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64", "RUNNER_NAME": "appliance-e2e",
        ]
        return "{\"work\":" + TestJSON.quote(Self.work) + ",\"workspace\":" + TestJSON.quote(Self.workspace)
            + ",\"env\":{"
            + env.sorted { $0.key < $1.key }.map { TestJSON.quote($0.key) + ":" + TestJSON.quote($0.value) }
            .joined(separator: ",") + "},\"calls\":[" + calls.joined(separator: ",") + "]}"
    }
}

extension GuestSuites {
    /// The appliance end to end (issue 12): a host guest standing in for the cloud VM boots with
    /// cloud-init and a NoCloud seed holding the user-data `runner-build userdata` renders; it
    /// fetches the release's bundle, the runner package and the guest images from 127.0.0.1,
    /// installs, registers with the fake GitHub, and the fake runner's worker runs container
    /// jobs through `container-hooks.sh` exactly as Runner.Worker calls hooks: a first job, a
    /// soak of jobs back to back, a reboot, an in-place upgrade while a job runs, a rollback.
    @Suite(
        .serialized, .requires("mmdebstrap"), .requires("setpriv"),
        .enabled(
            if: HookHarness.isAvailable && TestHost.which("python3") != nil,
            "needs root, systemd-nspawn, mmdebstrap, python3 and the built runner-agent"))
    struct ApplianceTests {
        static let token = "AAE2EREGISTRATIONTOKEN" + String(UInt32.random(in: 1_000_000...9_999_999))

        @Test(.timeLimit(.minutes(20)))
        func firstBootJobsSoakRebootUpgradeAndRollback() async throws {
            try await HookHarness.with { h in
                let e2e = h.dir.appending("e2e")
                let queue = e2e + "/queue"
                try FilePaths.createDirectory(queue)
                chmod(h.dir.path, 0o755)
                chmod(e2e, 0o755)
                chmod(queue, 0o777)
                try await ApplianceRelease.run(
                    Command("cp", [Fixtures.serviceDirectory + "/fake_worker.py", e2e + "/fake_worker.py"]))

                // The release, the runner package and the images, served on 127.0.0.1.
                let server = try await TestHTTPServer(directory: h.dir.appending("server"))
                defer { server.stop() }
                let github = try await FakeGitHub(directory: h.dir.path, registrationTokens: [Self.token])
                defer { github.stop() }
                let dist = h.dir.appending("dist")
                let bundle = try ApplianceRelease.bundle(in: dist)
                try server.serve(try FilePaths.read(bundle.path), at: "dl/bundle.tar.gz")
                let tarball = try await ApplianceRelease.runnerTarball(in: dist, apiURL: github.baseURL)
                try server.serve(try FilePaths.read(tarball), at: "dl/runner.tar.gz")
                let images = try await ApplianceRelease.imageArchives()
                try server.serve(try FilePaths.read(images.job), at: "dl/job.tar.zst")
                try server.serve(try FilePaths.read(images.svc), at: "dl/svc.tar.zst")

                // The user-data: `runner-build userdata`'s library call on a site config.
                let site = """
                    RUNNER_GITHUB_URL=\(github.baseURL)/octo-org/octo-repo
                    RUNNER_REGISTRATION_TOKEN=\(Self.token)
                    RUNNER_NAME=appliance-e2e
                    RUNNER_LABELS="linux, nspawn"
                    RUNNER_BUNDLE_URL=\(server.baseURL)/dl/bundle.tar.gz
                    RUNNER_VERSION=2.336.0
                    RUNNER_TARBALL_URL=\(server.baseURL)/dl/runner.tar.gz
                    RUNNER_TARBALL_SHA256=\(try SHA256Digest.hex(ofFile: tarball))
                    RUNNER_IMAGES="job=\(server.baseURL)/dl/job.tar.zst@sha256:\(try SHA256Digest.hex(ofFile: images.job)) svc=\(server.baseURL)/dl/svc.tar.zst@sha256:\(try SHA256Digest.hex(ofFile: images.svc))"
                    RUNNER_DEFAULT_IMAGE=job
                    RUNNER_IMAGE_ALIASES=ghcr.io/octo-org/ci-image:1.4=job

                    """
                let config = try RunnerConfig.parse(Array(site.utf8), source: "site.env", options: .render)
                let userData = try UserData.render(
                    .init(
                        config: config, ref: "v1.2", bundleSHA256: bundle.sha256,
                        unit: EmbeddedCloudInit.runnerInstallService, bootstrap: EmbeddedCloudInit.bootstrapScript,
                        gzip: true))
                let seed = h.dir.appending("seed")
                try AtomicFile.write(userData.bytes, to: seed + "/user-data", mode: 0o600)
                try AtomicFile.write(
                    "instance-id: appliance-e2e-0001\nlocal-hostname: appliance-e2e\n", to: seed + "/meta-data")

                // The job, queued before boot: the fake runner's listener takes it once it runs.
                var job = ApplianceJob()
                try job.prepare()
                try job.step(
                    """
                    echo "greeting=$GREETING"
                    echo "path=$PATH"
                    echo "uid=$(id -u) cwd=$(pwd)"
                    mkdir -p made/deeper && echo x > made/deeper/file && touch /__w/_temp/made-too

                    """ + ApplianceJob.serviceStep, env: ["GREETING": "hello from e2e"])
                try job.step("echo to-stderr >&2\nexit 7\n")
                try job.step("cat made/deeper/file\n")
                try job.step("echo started\nsleep 300\necho not-reached\n", interruptOn: "started")
                try job.cleanup()
                try job.enqueue(queue, name: "001")

                // The cloud VM: a writable copy of the cached tree, booted on the host network.
                let root = h.dir.appending("vm")
                try await ApplianceRelease.run(Command("cp", ["-a", try await GuestTree.applianceHost(), root]))
                let watcher = ArgvWatcher(secrets: [Self.token], scope: HostLayout().runnerDirectory)
                let watching = watcher.start()
                let binds = [
                    GuestBind(source: e2e, target: ApplianceRelease.mountPoint),
                    GuestBind(source: seed, target: "/var/lib/cloud/seed/nocloud", readOnly: true),
                ]
                let console = h.dir.appending("vm.log")
                let booted = MonotonicClock.now()
                var host = try await HostGuest.boot(
                    h, tree: root, binds: binds, volatile: false, untilReady: false, log: console)
                do {
                    try await checkFirstJob(host, root: root, queue: queue, github: github, booted: booted)
                    // The soak: half its jobs, a reboot (the second half queued while the host
                    // is down), the other half.
                    var soak = SoakFigures()
                    let total =
                        ProcessInfo.processInfo.environment["RUNNER_APPLIANCE_SOAK_JOBS"].flatMap(Int.init) ?? 30
                    let before = (0..<(total / 2)).map { "0" + String(10 + $0) }
                    let after = (0..<(total - total / 2)).map { String(100 + $0) }
                    try await runSoak(host, root: root, queue: queue, names: before, into: &soak)
                    let sessions = try await github.stats()["session", default: 0]
                    // An orderly poweroff; what hangs in the container's final stage after 30 s is
                    // cut, as a VM's power would be (seen: systemd-shutdown waiting on journald in
                    // nspawn). The boot after it must cope either way.
                    if let stuck = await host.poweroff(seconds: 30) {
                        print("appliance reboot: the VM did not power off by itself within 30 s; cut. \(stuck)")
                    }
                    for (index, name) in after.enumerated() {
                        try ApplianceJob.typical(before.count + index).enqueue(queue, name: name)
                    }
                    let rebooted = MonotonicClock.now()
                    host = try await HostGuest.boot(
                        h, tree: root, binds: binds, volatile: false, untilReady: false, log: console)
                    try await checkAfterReboot(
                        host, queue: queue, firstJob: after[0], github: github, sessionsBefore: sessions,
                        booted: rebooted)
                    try await runSoak(host, root: root, queue: queue, names: after, into: &soak, queued: true)
                    soak.report()
                    // In-place upgrade while a job runs, then rollback.
                    let next = try ApplianceRelease.bundle(in: h.dir.appending("dist-v1.3"), version: "v1.3")
                    try server.serve(try FilePaths.read(next.path), at: "dl/bundle-v1.3.tar.gz")
                    try await upgradeWhileAJobRuns(
                        host, root: root, queue: queue, bundleURL: server.baseURL + "/dl/bundle-v1.3.tar.gz",
                        sha256: next.sha256)
                } catch {
                    // The console of a failed run, kept for the reader (the test's directory goes).
                    _ = try? await SystemCommandRunner().run(
                        Command("cp", [console, "/tmp/appliance-e2e-console.log"]))
                    watcher.stop()
                    await watching.value
                    await host.shutdown()
                    throw error
                }
                try FilePaths.createDirectory(queue + "/stop")
                watcher.stop()
                await watching.value
                #expect(watcher.leaks.isEmpty, "the registration token on a command line: \(watcher.leaks)")
                await host.shutdown()
            }
        }

        /// The results of queued job `name`, once the worker wrote them (≤ `seconds`).
        func results(_ queue: String, _ name: String, seconds: Double = 180) async throws -> [FakeWorkerResults.Call] {
            let file = queue + "/" + name + "/results.json"
            _ = try await waitUntil("job \(name) done", seconds: seconds) { FilePaths.exists(file) }
            let results = try JSONDecoder().decode(FakeWorkerResults.self, from: Data(try FilePaths.read(file)))
            #expect(results.error == nil, "job \(name): \(results.error ?? "")")
            return results.calls ?? []
        }

        /// Requires every hook call of job `name` to have succeeded.
        func expectSucceeded(_ calls: [FakeWorkerResults.Call], _ name: String) {
            #expect(!calls.isEmpty, "job \(name) made no hook call")
            for call in calls where call.status != 0 {
                Issue.record("job \(name): \(call.command) exited \(call.status)\n\(call.stdout)\(call.stderr)")
            }
        }

        /// What the soak measured, over all its jobs.
        struct SoakFigures {
            var byCommand: [String: [Double]] = [:]
            /// Each step's time beyond its script's own.
            var stepOverheads: [Double] = []
            var jobs = 0
            var seconds = 0.0

            func report() {
                let figures = ["prepare_job", "run_script_step", "cleanup_job"].map { command in
                    "\(command) \(LatencySummary(byCommand[command, default: []]))"
                }
                print(
                    "appliance soak: \(jobs) jobs (across a reboot) in \(ApplianceTests.seconds(seconds)) s; "
                        + figures.joined(separator: "; ") + "; step overhead \(LatencySummary(stepOverheads))")
            }
        }

        /// Typical jobs back to back (``ApplianceJob/typical(_:)``): every hook call succeeds, the
        /// service answers, no step's overhead is above 1 s (a stall), nothing is left behind.
        /// `queued`: the jobs are already in the queue.
        func runSoak(
            _ host: HostGuest, root: String, queue: String, names: [String], into figures: inout SoakFigures,
            queued: Bool = false
        ) async throws {
            if !queued {
                for (index, name) in names.enumerated() {
                    try ApplianceJob.typical(figures.jobs + index).enqueue(queue, name: name)
                }
            }
            let start = MonotonicClock.now()
            for name in names {
                let calls = try await results(queue, name, seconds: 120)
                expectSucceeded(calls, name)
                if let service = calls.dropLast().last {
                    #expect(service.stdout.contains("HTTP/1.0 200"), "job \(name): \(service.stdout)\(service.stderr)")
                }
                for call in calls {
                    figures.byCommand[call.command, default: []].append(call.seconds)
                    guard call.command == "run_script_step" else { continue }
                    let script = ApplianceJob.scriptSeconds(call.stdout)
                    #expect(script != nil, "job \(name): a step without its script-ns line: \(call.stdout)")
                    let overhead = call.seconds - (script ?? 0)
                    figures.stepOverheads.append(overhead)
                    #expect(overhead <= 1, "job \(name): a step's overhead was \(overhead) s (a stall)")
                }
            }
            figures.jobs += names.count
            figures.seconds += MonotonicClock.now() - start
            try await expectNothingLeft(host, root: root)
        }

        /// After a reboot: runner.service comes back, the runner reconnects, and the first job
        /// queued while the host was down runs (the soak checks its calls).
        func checkAfterReboot(
            _ host: HostGuest, queue: String, firstJob: String, github: FakeGitHub, sessionsBefore: Int,
            booted: Double
        ) async throws {
            _ = try await waitUntil("runner.service active after the reboot", seconds: 120) {
                try await host.run(["systemctl", "is-active", "runner.service"]).standardOutput == "active\n"
            }
            let active = MonotonicClock.now() - booted
            _ = try await waitUntil("the runner online after the reboot", seconds: 60) {
                (try await github.stats()["session", default: 0]) > sessionsBefore
            }
            let online = MonotonicClock.now() - booted
            _ = try await results(queue, firstJob)
            let done = MonotonicClock.now() - booted
            let install = try await host.run(
                ["systemctl", "show", "-p", "ActiveState", "-p", "Result", "runner-install.service"])
            #expect(!install.standardOutput.contains("failed"), "\(install.standardOutput)")
            print(
                "appliance reboot: boot → runner.service active \(Self.seconds(active)) s, → online "
                    + "\(Self.seconds(online)) s, → first job done \(Self.seconds(done)) s")
        }

        /// `runner-agent upgrade` to v1.3 while a job's step runs: the job finishes unharmed, the
        /// host then runs v1.3 and takes jobs; `runner-agent rollback` returns to v1.2, which takes
        /// jobs too.
        func upgradeWhileAJobRuns(
            _ host: HostGuest, root: String, queue: String, bundleURL: String, sha256: String
        ) async throws {
            let marker = root + ApplianceJob.work + "/_temp/upgrade-step-started"
            try ApplianceJob.quick(
                "touch /__w/_temp/upgrade-step-started\nsleep 15\necho finished-under-upgrade\n"
            ).enqueue(queue, name: "200")
            _ = try await waitUntil("the long step started", seconds: 120) { FilePaths.exists(marker) }
            let start = MonotonicClock.now()
            let upgrade = try await host.run(
                ["runner-agent", "upgrade", "--bundle", bundleURL, "--sha256", sha256], seconds: 400)
            let upgradeSeconds = MonotonicClock.now() - start
            try #require(upgrade.status == .exited(0), "upgrade: \(upgrade.standardOutput)\(upgrade.standardError)")
            let during = try await results(queue, "200", seconds: 60)
            expectSucceeded(during, "200")
            #expect(
                during.dropFirst().first?.stdout.contains("finished-under-upgrade") == true,
                "the job's step did not finish: \(during.map(\.stdout))")
            #expect(try await release(host) == "v1.3")
            try ApplianceJob.quick("echo on-v1.3\n").enqueue(queue, name: "201")
            expectSucceeded(try await results(queue, "201"), "201")

            let rollback = try await host.run(["runner-agent", "rollback"], seconds: 400)
            try #require(rollback.status == .exited(0), "rollback: \(rollback.standardOutput)\(rollback.standardError)")
            #expect(try await release(host) == "v1.2")
            try ApplianceJob.quick("echo on-v1.2-again\n").enqueue(queue, name: "300")
            expectSucceeded(try await results(queue, "300"), "300")
            print(
                "appliance upgrade: v1.2 → v1.3 with a job running took \(Self.seconds(upgradeSeconds)) s; rollback ok")
        }

        /// The release `current` names (`releases/<version>`).
        func release(_ host: HostGuest) async throws -> String {
            let link = try await host.sh("readlink \(HostLayout().currentRelease)")
            return FilePaths.basename(String(link.split(separator: "\n").first ?? ""))
        }

        /// No guest unit, machine, record, relay socket or nspawn left in the host.
        func expectNothingLeft(_ host: HostGuest, root: String) async throws {
            let leftovers = try await host.sh(
                """
                systemctl list-units --all --no-legend --plain 'rg-*' | sed 's/^/unit /'
                machinectl list --no-legend | grep 'rg-' | sed 's/^/machine /' || true
                ls -A \(HostLayout().guestStateDirectory) 2>/dev/null | sed 's/^/record /'
                ls -A /run/runner/relay 2>/dev/null | sed 's/^/relay socket /'
                """)
            #expect(leftovers == "", "\(leftovers)")
            let nspawns = host.processes().filter { $0.first.map { FilePaths.basename($0) } == "systemd-nspawn" }
            #expect(nspawns.isEmpty, "\(nspawns)")
        }

        /// `seconds` rounded to hundredths, for the figures the suite prints.
        static func seconds(_ seconds: Double) -> String { "\((seconds * 100).rounded() / 100)" }

        /// Waits (bounded) until `check` holds, polling every 250 ms; returns the seconds it took.
        func waitUntil(
            _ what: String, seconds: Double, _ check: () async throws -> Bool
        ) async throws -> Double {
            let start = MonotonicClock.now()
            while MonotonicClock.now() - start < seconds {
                if try await check() { return MonotonicClock.now() - start }
                try await Task.sleep(for: .milliseconds(250))
            }
            throw RunnerError(.timeout, input: what, problem: "did not happen within \(Int(seconds)) s")
        }

        func checkFirstJob(
            _ host: HostGuest, root: String, queue: String, github: FakeGitHub, booted: Double
        ) async throws {
            do {
                _ = try await waitUntil("runner.service active", seconds: 300) {
                    let install = try await host.run(
                        ["systemctl", "show", "-p", "ActiveState", "--value", "runner-install.service"])
                    if install.standardOutput == "failed\n" {
                        throw RunnerError(.commandFailed, input: "runner-install.service", problem: "failed")
                    }
                    return try await host.run(["systemctl", "is-active", "runner.service"]).standardOutput == "active\n"
                }
            } catch {
                let journal = try await host.run([
                    "journalctl", "--no-pager", "-o", "cat", "-u", "runner-install.service", "-u", "runner.service",
                    "-u", "cloud-final.service",
                ])
                let state = try await host.sh(
                    "grep -e runner -e ' / ' /proc/1/mountinfo; systemctl list-units --all --no-legend '*.mount'")
                let output = journal.standardOutput
                Issue.record(
                    "\(error)\nfirst attempts:\n\(output.prefix(6000))\n…\nlast:\n\(output.suffix(3000))\nmounts:\n\(state)"
                )
                throw error
            }
            let active = MonotonicClock.now() - booted
            _ = try await waitUntil("the runner registered", seconds: 60) {
                (try await github.stats()["register", default: 0]) >= 1
            }
            let registered = MonotonicClock.now() - booted
            let resultsFile = queue + "/001/results.json"
            _ = try await waitUntil("the job done", seconds: 300) { FilePaths.exists(resultsFile) }
            let done = MonotonicClock.now() - booted

            let results = try JSONDecoder().decode(FakeWorkerResults.self, from: Data(try FilePaths.read(resultsFile)))
            #expect(results.error == nil, "\(results.error ?? "")")
            let calls = results.calls ?? []
            try #require(calls.count == 6, "\(calls.map(\.command))")
            let (prepare, greet, fail, again, interrupted, cleanup) = (
                calls[0], calls[1], calls[2], calls[3], calls[4], calls[5]
            )
            #expect(prepare.status == 0, "\(prepare.stdout)\(prepare.stderr)")
            #expect(prepare.response.contains("\"isAlpine\""), "\(prepare.response)")
            #expect(greet.status == 0, "\(greet.stdout)\(greet.stderr)")
            #expect(greet.stdout.contains("greeting=hello from e2e\n"), "\(greet.stdout)")
            #expect(
                greet.stdout.contains("path=/__w/_tool/node/20.11.1/x64/bin:/github/home/.local/bin:"),
                "\(greet.stdout)")
            #expect(greet.stdout.contains("uid=0 cwd=/__w/octo-repo/octo-repo\n"), "\(greet.stdout)")
            #expect(greet.stdout.contains("HTTP/1.0 200"), "the service did not answer: \(greet.stdout)")
            #expect(fail.status == 7, "\(fail.stdout)\(fail.stderr)")
            #expect(fail.stderr.contains("to-stderr"), "\(fail.stderr)")
            #expect(again.status == 0 && again.stdout == "x\n", "\(again.stdout)\(again.stderr)")
            #expect(interrupted.status != 0)
            #expect(interrupted.stdout.contains("started") && !interrupted.stdout.contains("not-reached"))
            #expect(interrupted.seconds < 10, "the SIGINT'd step took \(interrupted.seconds) s")
            #expect(cleanup.status == 0, "\(cleanup.stdout)\(cleanup.stderr)")

            // What the steps made in the workspace is the runner user's.
            let ids = try await host.sh("id -u runner; id -g runner").split(separator: "\n")
            let uid = try #require(UInt32(ids.first ?? "")), gid = try #require(UInt32(ids.last ?? ""))
            for path in ["octo-repo/octo-repo/made", "octo-repo/octo-repo/made/deeper/file", "_temp/made-too"] {
                var st = stat()
                #expect(stat(root + ApplianceJob.work + "/" + path, &st) == 0, "\(path) is missing")
                #expect(st.st_uid == uid && st.st_gid == gid, "\(path) is owned by \(st.st_uid):\(st.st_gid)")
            }

            // Nothing left behind: no guest unit, machine, record, relay socket or nspawn.
            try await expectNothingLeft(host, root: root)

            // No secret in the journal.
            let journal = try await host.run(["journalctl", "--no-pager", "-o", "cat"], seconds: 60)
            #expect(!journal.standardOutput.isEmpty)
            #expect(!journal.standardOutput.contains(Self.token), "the registration token is in the journal")

            let figures = calls.map { "\($0.command) \(Self.seconds($0.seconds)) s" }.joined(separator: ", ")
            print(
                "appliance: boot → runner.service active \(Self.seconds(active)) s, → registered "
                    + "\(Self.seconds(registered)) s, → first job done \(Self.seconds(done)) s; "
                    + figures)
        }
    }
}
