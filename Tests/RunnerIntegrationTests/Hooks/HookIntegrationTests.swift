import FoundationEssentials
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

extension GuestSuites {
    /// The hook driven as the runner drives it, with real nspawn guests (no machined: the build
    /// machine's PID 1 is not systemd).
    @Suite(
        .serialized,
        .enabled(
            if: HookHarness.isAvailable,
            "needs root, systemd-nspawn, mmdebstrap and the built runner-agent and runner-hook")
    )
    struct HookIntegrationTests {
        /// The state object from a prepare_job response.
        func state(of response: String) throws -> String { try HookHarness.state(of: response) }

        /// The service's secret, with characters systemd's and the shell's quoting care about.
        static let secret = #"s3cr3t-"q" %n $HOME \x 'y'"#

        @Test func jobWithServiceFromPrepareToCleanup() async throws {
            try await HookHarness.with { h in
                let responseFile = try h.newResponseFile()
                // The service maps a different host port, has a secret env value, a passing
                // health check and an option this runner ignores.
                let hostPort = h.freePort()
                let serviceJSON = h.serviceJSON(
                    ports: ["\(hostPort):\(h.servicePort)"], environment: ["SVC_SECRET": Self.secret],
                    options: #"--health-cmd "systemctl is-active test-http.service" --health-interval 1s --cpus 1"#)
                let prepared = try await h.hook(
                    try h.prepareJob(responseFile: responseFile, services: serviceJSON), responseFile: responseFile)
                #expect(prepared.status == RunnerCore.ExitStatus.exited(0), "\(prepared.text)\(prepared.stderr)")
                let response = prepared.response
                #expect(response.contains("\"isAlpine\":false"))
                #expect(response.contains("\"ports\":{\"\(h.servicePort)\":\"\(hostPort)\"}"))
                #expect(response.contains("\"container\":{\"id\":\"rg-"))
                #expect(FilePaths.exists(h.work + "/_runner_volumes/my_docker_volume"))
                // --cpus is a limit now, not an ignored option.
                #expect(!prepared.text.contains("--cpus 1 is ignored"), "\(prepared.text)")
                var mode = stat()
                #expect(stat(responseFile, &mode) == 0 && mode.st_mode & 0o777 == 0o600, "the state holds the job env")
                let state = try state(of: response)

                // The mapped host port answers from the host (DNAT to the service's guest).
                #expect(HookHarness.httpStatusLine(port: hostPort).hasPrefix("HTTP/1.0 200"))

                // The env value reaches the service's unit, and no command line or log.
                let serviceGuest = try #require(
                    state.firstRange(of: "\"services\":[\"").map { String(state[$0.upperBound...].prefix(15)) })
                // Read from the host: a step's unit (docker's capabilities) may not read the
                // environment of the service's more privileged process.
                let server = try #require(
                    ProcessTable.allPIDs().first {
                        let args = ProcessTable.commandLine(of: $0)
                        return args.contains("http.server") && args.contains("\(h.servicePort)")
                    })
                let environ = String(
                    decoding: try FilePaths.read("/proc/\(server)/environ").map { $0 == 0 ? 10 : $0 }, as: UTF8.self)
                #expect(environ.contains("SVC_SECRET=" + Self.secret + "\n"), "\(environ)")
                let envFile = h.layout.guestStateDirectory + "/" + serviceGuest + ".env.conf"
                // Root-only on the host; readable by the guest's root (host UID base), nobody else.
                #expect(
                    stat(envFile, &mode) == 0 && mode.st_mode & 0o777 == 0o600
                        && mode.st_uid == GuestUserNamespace.standard.base)
                #expect(stat(h.layout.guestStateDirectory, &mode) == 0 && mode.st_mode & 0o777 == 0o700)
                for pid in ProcessTable.allPIDs() {
                    #expect(!ProcessTable.commandLine(of: pid).joined(separator: " ").contains("s3cr3t"), "pid \(pid)")
                }
                let guestLog = (try? FilePaths.read(h.layout.guestLog(serviceGuest))) ?? []
                for text in [prepared.text, prepared.stderr, String(decoding: guestLog, as: UTF8.self)] {
                    #expect(!text.contains("s3cr3t"))
                }

                // File commands, container env, prependPath, working directory, ::error::, ownership.
                let files = h.work + "/_temp/_runner_file_commands/"
                let guid = "6a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
                for kind in ["set_env", "set_output", "add_path", "save_state", "step_summary"] {
                    try AtomicFile.write("", to: files + kind + "_" + guid)
                    // The runner (the work tree's owner) makes these files.
                    chown(files + kind + "_" + guid, HookHarness.ownerUID, HookHarness.ownerUID)
                }
                let script = """
                    echo "FOO=bar" >> "$GITHUB_ENV"
                    echo "answer=42" >> "$GITHUB_OUTPUT"
                    echo "env: node=$NODE_ENV home=$HOME ga=$GITHUB_ACTIONS ci=$CI flavor=$CI_BUILD_FLAVOR"
                    echo "path: $PATH"
                    echo "cwd: $(pwd)"
                    mkdir -p made/by/step && touch made/by/step/file
                    echo "::error::boom from the step"
                    echo "to stderr" >&2

                    """
                let step = try await h.hook(try h.runScriptStep(script, state: state))
                #expect(step.status == RunnerCore.ExitStatus.exited(0), "\(step.text)\(step.stderr)")
                #expect(step.text.contains("env: node=development home=/github/home ga=true ci=true flavor=release"))
                #expect(
                    step.text.contains(
                        "path: /__w/_tool/node/20.11.1/x64/bin:/github/home/.local/bin:" + GuestDefaults.path))
                #expect(step.text.contains("cwd: /__w/octo-repo/octo-repo"))
                #expect(step.text.contains("::error::boom from the step"))
                #expect(step.stderr.contains("to stderr"))
                #expect(String(decoding: try FilePaths.read(files + "set_env_" + guid), as: UTF8.self) == "FOO=bar\n")
                #expect(
                    String(decoding: try FilePaths.read(files + "set_output_" + guid), as: UTF8.self) == "answer=42\n")
                var st = stat()
                #expect(lstat(h.work + "/octo-repo/octo-repo/made/by/step/file", &st) == 0)
                #expect(st.st_uid == HookHarness.ownerUID)

                // prependPath as the old single string, and the exit code passed through.
                let exit3 = try await h.hook(
                    try h.runScriptStep("exit 3\n", state: state, prependPath: #""prependPath":"/opt/x""#))
                #expect(exit3.status == RunnerCore.ExitStatus.exited(3))

                // 10 MB of output, intact.
                let big = try await h.hook(
                    try h.runScriptStep(
                        "python3 -c 'import sys\nfor i in range(1048576): sys.stdout.write(\"%09d\\n\" % i)'\n",
                        state: state))
                #expect(big.status == RunnerCore.ExitStatus.exited(0), "\(big.stderr)")
                #expect(big.stdout.count == 10_485_760)
                let lines = big.text.split(separator: "\n")
                #expect(lines.count == 1_048_576)
                #expect(lines.first == "000000000" && lines.last == "001048575")

                // The service, by its image's base name, from the job guest.
                let service = try await h.hook(
                    try h.runScriptStep(
                        "exec 3<>/dev/tcp/svc/\(h.servicePort)\nprintf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3\nhead -n1 <&3\n",
                        state: state))
                #expect(service.status == RunnerCore.ExitStatus.exited(0), "\(service.text)\(service.stderr)")
                #expect(service.text.hasPrefix("HTTP/1.0 200"))
                // The job's network is its own: the service's own port is not the host's.
                #expect(!TCPSocket.accepts(port: h.servicePort))

                let cleanup = try await h.hook(try h.cleanupJob(state: state))
                #expect(cleanup.status == RunnerCore.ExitStatus.exited(0), "\(cleanup.stderr)")
                #expect(await h.leftoversAfterSettling() == [])
                #expect(!TCPSocket.accepts(port: hostPort), "the published port goes with the service guest")
            }
        }

        @Test func serviceRefusalsLeaveNothingBehind() async throws {
            try await HookHarness.with { h in
                func expectError(
                    _ services: String, _ needles: [String], sourceLocation: SourceLocation = #_sourceLocation
                ) async throws {
                    let responseFile = try h.newResponseFile()
                    let result = try await h.hook(
                        try h.prepareServicesOnly(responseFile: responseFile, services: services))
                    #expect(result.status != RunnerCore.ExitStatus.exited(0), sourceLocation: sourceLocation)
                    let error =
                        result.text.split(separator: "\n").first { $0.hasPrefix("::error::") }.map(String.init) ?? ""
                    for needle in needles {
                        #expect(error.contains(needle), "\(result.text)", sourceLocation: sourceLocation)
                    }
                    #expect(await h.leftoversAfterSettling() == [], sourceLocation: sourceLocation)
                }
                let shared = h.freePort()
                // Two services asking for one host port: refused before anything boots.
                try await expectError(
                    h.serviceJSON(ports: ["\(shared):\(h.servicePort)"]) + ","
                        + h.serviceJSON(image: "svc:2", ports: ["\(shared):1234"]),
                    ["service svc:2 port \(shared)", "also used by service svc:1"])
                // A host port something on the host already listens on.
                let taken = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                defer { close(taken) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = shared.bigEndian
                let bound = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(taken, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                #expect(bound == 0 && listen(taken, 1) == 0)
                try await expectError(
                    h.serviceJSON(ports: ["\(shared):\(h.servicePort)"]),
                    ["service svc:1 port \(shared)", "already in use on the host"])
                // UDP to another host port.
                try await expectError(h.serviceJSON(ports: ["8053:53/udp"]), ["service svc:1", "UDP"])
                // A failing health check: the service booted, the check ran, the guest is gone again.
                try await expectError(
                    h.serviceJSON(
                        options: #"--health-cmd "echo not-healthy-yet; exit 1" --health-interval 1s --health-retries 2"#
                    ),
                    ["service svc:1", "health check", "not-healthy-yet"])
            }
        }

        @Test func servicesOnlyJob() async throws {
            try await HookHarness.with { h in
                let responseFile = try h.newResponseFile()
                var json = try h.prepareJob(responseFile: responseFile)
                let start = try #require(json.firstRange(of: "\"container\":{"))
                let end = try #require(json.firstRange(of: ",\"services\":["))
                json = String(json[..<start.lowerBound]) + "\"container\":null" + String(json[end.lowerBound...])
                let prepared = try await h.hook(json, responseFile: responseFile)
                #expect(prepared.status == RunnerCore.ExitStatus.exited(0), "\(prepared.text)\(prepared.stderr)")
                #expect(!prepared.response.contains("\"container\""))
                #expect(prepared.response.contains("\"ports\":{\"\(h.servicePort)\":\"\(h.servicePort)\"}"))
                // Steps run on the host: the service is reachable there (its port is published).
                #expect(TCPSocket.accepts(port: h.servicePort))
                let cleanup = try await h.hook(try h.cleanupJob(state: try state(of: prepared.response)))
                #expect(cleanup.status == RunnerCore.ExitStatus.exited(0))
                #expect(await h.leftoversAfterSettling() == [])
                #expect(!TCPSocket.accepts(port: h.servicePort))
            }
        }

        @Test func sigintMidStepStopsTheStepAndCleanupLeavesNothing() async throws {
            try await HookHarness.with { h in
                let responseFile = try h.newResponseFile()
                let prepared = try await h.hook(
                    try h.prepareJob(responseFile: responseFile, services: ""), responseFile: responseFile)
                #expect(prepared.status == RunnerCore.ExitStatus.exited(0), "\(prepared.text)\(prepared.stderr)")
                let state = try state(of: prepared.response)
                let (hook, stdout, _) = try h.spawnHook(try h.runScriptStep("echo started\nsleep 300\n", state: state))
                let deadline = MonotonicClock.now() + 20
                while MonotonicClock.now() < deadline,
                    !String(decoding: (try? FilePaths.read(stdout)) ?? [], as: UTF8.self).contains("started")
                {
                    await MonotonicClock.pause(seconds: 0.05)
                }
                let sent = MonotonicClock.now()
                hook.signal(SIGINT)
                let status = await hook.wait()
                #expect(MonotonicClock.now() - sent < 6, "the step should stop within seconds")
                #expect(status != RunnerCore.ExitStatus.exited(0))
                // The step's unit is gone from the guest: nothing runs `sleep 300` any more.
                let sleepers = ProcessTable.allPIDs().filter { ProcessTable.commandLine(of: $0) == ["sleep", "300"] }
                #expect(sleepers.isEmpty)
                let cleanup = try await h.hook(try h.cleanupJob(state: state))
                #expect(cleanup.status == RunnerCore.ExitStatus.exited(0))
                #expect(await h.leftoversAfterSettling() == [])
            }
        }

        @Test func killedDuringPrepareThenGCLeavesNothing() async throws {
            try await HookHarness.with { h in
                let responseFile = try h.newResponseFile()
                let (hook, _, _) = try h.spawnHook(try h.prepareJob(responseFile: responseFile))
                // Wait until a guest record exists (the service guest is booting), then kill -9.
                let deadline = MonotonicClock.now() + 20
                while MonotonicClock.now() < deadline, h.leftovers().allSatisfy({ !$0.hasPrefix("file ") }) {
                    await MonotonicClock.pause(seconds: 0.01)
                }
                hook.signal(SIGKILL)
                _ = await hook.wait()
                #expect(!h.leftovers().isEmpty, "the kill should have interrupted a prepare_job")
                // The runner dies with it: the job's owner is gone, so gc sweeps the guest.
                h.ownerProcess.signal(SIGKILL)
                _ = await h.ownerProcess.wait()
                let gc = await h.runAgent(["gc"], asHelper: true)
                #expect(gc.status == RunnerCore.ExitStatus.exited(0), "\(gc.stderr)")
                #expect(await h.leftoversAfterSettling() == [])
            }
        }

        @Test func killedDuringPrepareThenCleanupWithNullStateLeavesNothing() async throws {
            try await HookHarness.with { h in
                let responseFile = try h.newResponseFile()
                let (hook, _, _) = try h.spawnHook(try h.prepareJob(responseFile: responseFile))
                let deadline = MonotonicClock.now() + 20
                while MonotonicClock.now() < deadline, h.leftovers().allSatisfy({ !$0.hasPrefix("file ") }) {
                    await MonotonicClock.pause(seconds: 0.01)
                }
                hook.signal(SIGKILL)
                _ = await hook.wait()
                #expect(!h.leftovers().isEmpty, "the kill should have interrupted a prepare_job")
                // The runner lives on and calls cleanup_job with the state it has: null.
                let cleanup = try await h.hook(try h.cleanupJob(state: "null"))
                #expect(cleanup.status == RunnerCore.ExitStatus.exited(0), "\(cleanup.stderr)")
                #expect(await h.leftoversAfterSettling() == [])
            }
        }

        @Test func refusals() async throws {
            try await HookHarness.with { h in
                func expectError(
                    _ result: HookHarness.Result, _ needle: String, sourceLocation: SourceLocation = #_sourceLocation
                ) {
                    #expect(result.status != RunnerCore.ExitStatus.exited(0), sourceLocation: sourceLocation)
                    // Warnings about ignored options may come first; the error is one line.
                    let error = result.text.split(separator: "\n").first { $0.hasPrefix("::error::") } ?? ""
                    #expect(error.contains(needle), "\(result.text)", sourceLocation: sourceLocation)
                }
                expectError(try await h.hook("{not json"), "not a valid hook JSON")
                expectError(try await h.hook(#"{"command":"launch_rockets","args":{},"state":null}"#), "launch_rockets")
                expectError(try await h.hook(try h.runScriptStep("true\n", state: "null")), "no job guest")
                expectError(
                    try await h.hook(
                        try h.runScriptStep("true\n", state: #"{"guest":"rg-0123456789ab","services":[]}"#)),
                    "no such guest")
                expectError(
                    try await h.hook(try h.runScriptStep("true\n", state: #"{"guest":"../../etc/passwd"}"#)),
                    "not a guest name")
                let runContainer = String(decoding: try Fixtures.hook("runner-run_container_step.json"), as: UTF8.self)
                expectError(try await h.hook(runContainer), "not supported")

                let responseFile = try h.newResponseFile()
                let unknown = try await h.hook(try h.prepareJob(responseFile: responseFile, image: "nope/unknown:1"))
                expectError(unknown, "nope/unknown:1")
                #expect(unknown.text.contains("job, svc"))
                // Checked before any guest boots: nothing is left.
                #expect(h.leftovers() == [])

                let outside = try await h.hook(
                    try h.prepareJob(responseFile: responseFile, services: "").replacing(
                        "\(h.work)/_srv_cache", with: "/etc"))
                expectError(outside, "outside the allowed roots")
                #expect(h.leftovers() == [])

                // The helper called directly (as ci-nspawn-run) refuses a foreign mount source and names.
                let direct = await h.runAgent(["start", "--image", "job", "--bind", "/etc:/host-etc"], asHelper: true)
                #expect(direct.status != RunnerCore.ExitStatus.exited(0))
                #expect(direct.stderr.contains("outside the allowed roots"), "\(direct.stderr)")
                let badImage = await h.runAgent(["start", "--image", "../../../"], asHelper: true)
                #expect(badImage.status != RunnerCore.ExitStatus.exited(0))
                #expect(badImage.stderr.contains("not an image name"), "\(badImage.stderr)")
                let badName = await h.runAgent(["exec", "mybox", "--", "true"], asHelper: true)
                #expect(badName.status != RunnerCore.ExitStatus.exited(0))
                #expect(badName.stderr.contains("not a guest name"), "\(badName.stderr)")
                #expect(h.leftovers() == [])
            }
        }

        @Test func helperStartExecListStop() async throws {
            try await HookHarness.with { h in
                let started = await h.runAgent(
                    ["start", "--image", "job", "--bind", "\(h.work):/__w", "--owner-pid", "\(h.owner)"], asHelper: true
                )
                #expect(started.status == RunnerCore.ExitStatus.exited(0), "\(started.stderr)")
                let info = try JSONDecoder().decode(GuestInfo.self, from: Data(started.stdout))
                let listed = await h.runAgent(["guest", "list"])
                #expect(listed.text.contains(info.name))
                let exec = await h.runAgent(
                    ["exec", info.name, "--cwd", "/__w", "--env", "X=1", "--", "sh", "-c", "echo x=$X; pwd; exit 7"],
                    asHelper: true)
                #expect(exec.status == RunnerCore.ExitStatus.exited(7))
                #expect(exec.text == "x=1\n/__w\n")
                // --timeout (a health check's bound): systemd stops the command.
                let began = MonotonicClock.now()
                let bounded = await h.runAgent(
                    ["exec", info.name, "--timeout", "1", "--", "sleep", "30"], asHelper: true)
                #expect(bounded.status != RunnerCore.ExitStatus.exited(0))
                #expect(MonotonicClock.now() - began < 15, "the unit's RuntimeMaxSec= ends it")
                let stop = await h.runAgent(["stop", info.name], asHelper: true)
                #expect(stop.status == RunnerCore.ExitStatus.exited(0))
                let again = await h.runAgent(["stop", info.name], asHelper: true)
                #expect(again.status == RunnerCore.ExitStatus.exited(0), "stopping a gone guest is fine")
                #expect(await h.leftoversAfterSettling() == [])
            }
        }
    }
}
