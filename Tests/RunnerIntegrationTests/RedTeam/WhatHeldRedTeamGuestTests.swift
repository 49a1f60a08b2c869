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

extension GuestSuites {
    /// The guest-booting half of issue #10's "what held" list (see ``WhatHeldRedTeamTests``):
    /// the step relay against other users, a 4 GiB length prefix, a directory as stdout and odd
    /// environment names; the helper's name checks and the files it writes; service `env:`
    /// values and a passive console.
    @Suite(
        .serialized,
        .guestsAndSetpriv)
    struct WhatHeldRedTeamGuestTests {
        static let user = HookHarness.ownerUID
        static let attacker = WhatHeldRedTeamTests.attacker

        /// A run_script_step for the hook running `script` with bash, with `environment`.
        func step(_ script: String, guest: String, environment: [String: String] = [:]) -> String {
            var variables = TestJSON.encode(environment)
            if environment.isEmpty { variables = "{}" }
            return """
                {"command":"run_script_step","responseFile":null,"args":{"entryPoint":"bash",\
                "entryPointArgs":["-c",\(TestJSON.quote(script))],"environmentVariables":\(variables),\
                "prependPath":[],"workingDirectory":"/__w/octo-repo/octo-repo"},\
                "state":{"guest":"\(guest)","services":[],"environment":{}}}
                """
        }

        /// A relay's answer to a raw connection: what it wrote until it closed (bounded).
        static func readReply(_ fd: Int32, seconds: Double) -> String {
            var answer: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            let end = MonotonicClock.now() + seconds
            while MonotonicClock.now() < end {
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&pfd, 1, 100) >= 0 else { break }
                if pfd.revents == 0 { continue }
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                answer += buffer[0..<n]
            }
            return String(decoding: answer, as: UTF8.self)
        }

        /// `VmPeak` of `pid` in KiB.
        static func virtualPeak(_ pid: Int32) -> Int {
            let status = String(decoding: (try? FilePaths.read("/proc/\(pid)/status")) ?? [], as: UTF8.self)
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmPeak:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }

        /// The step relay of one guest, attacked: another user (with the socket opened to
        /// everyone, so only the relay's peer check stands), a 4 GiB length prefix, a directory
        /// descriptor passed as stdout, and environment names systemd or env(1) could misread.
        @Test func theRelayHoldsAgainstItsCallers() async throws {
            try await HookHarness.with { h in
                let started = await h.runAgent(
                    ["guest", "start", "--image", "job", "--bind", h.work + ":/__w", "--relay-uid", "\(Self.user)"])
                try #require(started.status == .exited(0), "\(started.stderr)")
                let name = try #require(started.text.firstMatch(of: /"name":"(rg-[0-9a-f]+)"/)?.1).description
                let socket = h.layout.guestRelaySocket(name)
                let first = try await h.hook(step("echo ok", guest: name), asUser: Self.user)
                #expect(first.status == .exited(0) && first.text == "ok\n", "\(first.stderr)")

                // Another user: the socket is not theirs...
                let canary = h.work + "/octo-repo/other-user-ran"
                let blocked = try await h.hook(
                    step("touch /__w/octo-repo/other-user-ran", guest: name), asUser: Self.attacker)
                #expect(blocked.status != .exited(0))
                // ...and with the socket opened to everyone, the relay's own check refuses them.
                #expect(chmod(socket, 0o666) == 0)
                let refused = try await h.hook(
                    step("touch /__w/octo-repo/other-user-ran", guest: name), asUser: Self.attacker)
                #expect(refused.status != .exited(0))
                // The relay refuses before it reads the request: the hook sees its answer, or the close.
                let answer = refused.text + refused.stderr
                #expect(
                    answer.contains("only the user who started the guest") || answer.contains("did not take the step"),
                    "\(answer)")
                #expect(!FilePaths.exists(canary), "another user ran a step")
                #expect(chmod(socket, 0o600) == 0)

                // A 4 GiB length prefix (with the two descriptors a request carries): refused at
                // once, nothing of that size allocated, and the relay keeps serving.
                let manager = GuestManager(policy: GuestPolicy(layout: h.layout), logger: Logger(label: "red-team"))
                let relay = try #require(try manager.record(name)?.relayPID)
                let peakBefore = Self.virtualPeak(relay)
                let connection = try #require(UnixSocket.connect(path: socket))
                var ends: [Int32] = [-1, -1]
                try #require(pipe(&ends) == 0)
                let began = MonotonicClock.now()
                #expect(
                    UnixSocket.sendRaw(connection, [0xff, 0xff, 0xff, 0xff, 0x7b], descriptors: [ends[1], ends[1]]))
                let reply = await DedicatedThread.run { Self.readReply(connection, seconds: 10) }
                close(connection)
                ends.forEach { close($0) }
                #expect(MonotonicClock.now() - began < 5)
                #expect(reply.contains("step request") && reply.contains("too large"), "\(reply)")
                #expect(ProcessTable.isAlive(relay, startTime: nil))
                let peakAfter = Self.virtualPeak(relay)
                #expect(peakAfter - peakBefore < 64 << 10, "the relay's peak grew \(peakAfter - peakBefore) KiB")
                let again = try await h.hook(step("echo still", guest: name), asUser: Self.user)
                #expect(again.status == .exited(0) && again.text == "still\n", "\(again.stderr)")

                // A directory as the hook's stdout (`exec 1</dir`): the step never gets the
                // directory (it could walk out of it by `..`), only a pipe. (Two layers hold: the
                // relay copies through a pipe, and the guest's systemd, handed a directory as a
                // unit's stdout, does not give it to the unit either.)
                let canaryDirectory = h.dir.appending("canary-dir")
                try FilePaths.createDirectory(canaryDirectory, mode: 0o755)
                try AtomicFile.write("canary", to: canaryDirectory + "/canary-marker", mode: 0o644)
                let directory = open(canaryDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                try #require(directory >= 0)
                defer { close(directory) }
                let probe = """
                    readlink /proc/self/fd/1 >&2
                    ls /proc/self/fd/1/ >&2 && echo listed >&2
                    cat /proc/self/fd/1/canary-marker >&2 && echo read >&2
                    touch /proc/self/fd/1/planted 2>/dev/null && echo planted >&2
                    exit 0
                    """
                let agent = h.dir.appending("bin/runner-agent")
                var command = Command(
                    "setpriv",
                    ["--reuid=\(Self.user)", "--regid=\(Self.user)", "--clear-groups", "--", agent, "hook"])
                command.environment = h.environment
                command.workingDirectory = h.work
                let stderr = h.dir.appending("directory-as-stdout.stderr")
                let hook = try Spawner.spawn(
                    command,
                    options: SpawnOptions(
                        standardInput: .bytes(Array((step(probe, guest: name) + "\n").utf8)),
                        standardOutput: .descriptor(directory), standardError: .file(stderr)))
                let status = await hook.wait()
                let said = String(decoding: (try? FilePaths.read(stderr)) ?? [], as: UTF8.self)
                #expect(status == .exited(0), "\(said)")
                #expect(said.hasPrefix("pipe:"), "the step's stdout: \(said)")
                for evidence in ["listed", "read", "planted", "canary-marker"] {
                    #expect(!said.split(separator: "\n").contains { $0.hasSuffix(evidence) }, "\(said)")
                }
                #expect(FilePaths.entries(of: canaryDirectory) == ["canary-marker"])

                // Odd environment names: none runs a command or becomes an option of env(1) or
                // systemd; each arrives exactly or not at all.
                let pwned = "/__w/octo-repo/env-pwned"
                let odd: [String: String] = [
                    "-u": "PATH", "--split-string=touch \(pwned)": "1", "-S touch \(pwned)": "1", "A B": "c d",
                    "X\nY": "z", "a=b": "dropped", "$(touch \(pwned))": "s", "INPUT_FETCH-DEPTH": "0",
                    "%n": "pct", "ok_NAME": "v\nw",
                ]
                let dump = try await h.hook(
                    step(
                        """
                        python3 -c 'import os, json; print(json.dumps(dict(os.environ)))'
                        """, guest: name, environment: odd), asUser: Self.user)
                #expect(dump.status == .exited(0), "\(dump.text)\(dump.stderr)")
                #expect(!FilePaths.exists(h.work + "/octo-repo/env-pwned"), "an environment name ran a command")
                let seen = try JSONDecoder().decode([String: String].self, from: Data(dump.stdout))
                #expect(seen["PATH"] != nil, "`-u PATH` unset PATH")
                #expect(seen["a"] == nil && seen["a=b"] == nil)
                for (key, value) in odd where key != "a=b" {
                    if let arrived = seen[key] { #expect(arrived == value, "\(key)") }
                }
                #expect(seen["ok_NAME"] == "v\nw" && seen["INPUT_FETCH-DEPTH"] == "0", "\(seen)")

                #expect(await h.runAgent(["guest", "stop", name]).status == .exited(0))
                #expect(await h.leftoversAfterSettling() == [])
            }
        }

        /// Names the helper did not generate, image names that climb out of the store, bind
        /// targets with `..` and `/etc/hosts` aliases that are not `[a-z0-9-]`: refused, naming
        /// the input, with the canaries at the paths they would reach untouched and nothing
        /// written. Then a real start: everything the helper wrote is under the generated name.
        @Test func theHelperWritesOnlyUnderGeneratedNames() async throws {
            try await HookHarness.with { h in
                let state = h.layout.guestStateDirectory
                try FilePaths.createDirectory(state, mode: 0o700)
                // Canaries where `../x` and `../../x` lead from the state directory.
                let canaries = [state + "/../x", state + "/../../x"].flatMap { base in
                    ["json", "log", "hosts", "env.conf", "notify"].map { base + "." + $0 }
                }
                for canary in canaries { try AtomicFile.write("canary", to: canary, mode: 0o600) }
                try FilePaths.createDirectory(state + "/../x.binds/keep", mode: 0o700)
                // A canary "image" where `../canary-img` leads from the store: never shifted.
                let digest = String(repeating: "0", count: 60) + "ca11"
                let canaryImage = h.layout.imagesDirectory + "/../canary-img"
                try FilePaths.createDirectory(canaryImage + "/" + digest + "/rootfs/etc")
                try AtomicFile.write("canary", to: canaryImage + "/" + digest + "/rootfs/etc/canary-marker")
                symlink(digest, canaryImage + "/current")

                func refused(
                    _ arguments: [String], _ needle: String, stdin: String? = nil,
                    sourceLocation: SourceLocation = #_sourceLocation
                ) async throws {
                    let result: HookHarness.Result
                    if let stdin {
                        var command = Command(HookHarness.agent!, arguments)
                        command.environment = h.environment
                        let ran = try await SystemCommandRunner().run(
                            command, input: Array(stdin.utf8), output: .capture(limit: 1 << 20))
                        result = HookHarness.Result(
                            status: ran.status, stdout: Array(ran.standardOutput.utf8), stderr: ran.standardError,
                            response: "")
                    } else {
                        result = await h.runAgent(arguments, asHelper: true)
                    }
                    #expect(result.status != .exited(0), "\(arguments)", sourceLocation: sourceLocation)
                    #expect(
                        result.stderr.contains(needle), "\(arguments): \(result.stderr)", sourceLocation: sourceLocation
                    )
                    #expect(h.leftovers() == [], sourceLocation: sourceLocation)
                }
                for name in ["../../x", "../x", "rg-../../x", "rg-0123456789ab/../../x", "x", "RG-0123456789AB"] {
                    try await refused(["stop", name], "not a guest name")
                    try await refused(["exec", name, "--", "true"], "not a guest name")
                }
                for image in ["../canary-img", "job/../../canary-img", "/tmp", "-x", ".job", "job\n"] {
                    try await refused(["start", "--image=" + image, "--owner-pid", "\(h.owner)"], "not an image name")
                }
                for target in ["/a/../etc", "../x", "relative", "/__w/../../etc"] {
                    try await refused(
                        ["start", "--image", "job", "--bind", h.work + ":" + target, "--owner-pid", "\(h.owner)"],
                        target)
                }
                for alias in ["a b", "evil\n1.2.3.4 x", "UPPER", "a.b", String(repeating: "a", count: 64), "é"] {
                    try await refused(
                        ["start", "--image", "job", "--host-alias=" + alias, "--owner-pid", "\(h.owner)"],
                        "is not a valid host name")
                }
                // Aliases in a request on stdin (what the hook sends), the empty one too.
                for alias in ["svc\n1.2.3.4 github.com", "", "svc\tdb"] {
                    let hostile = GuestStartRequest(image: "job", hostAliases: ["svc", alias], ownerPID: h.owner)
                    try await refused(
                        ["guest", "start", "--request-stdin"], "is not a valid host name",
                        stdin: String(decoding: try JSONEncoder().encode(hostile), as: UTF8.self))
                }
                for canary in canaries {
                    #expect(try FilePaths.read(canary) == Array("canary".utf8), "\(canary)")
                }
                #expect(FilePaths.exists(state + "/../x.binds/keep"))
                var st = stat()
                #expect(lstat(canaryImage + "/" + digest + "/rootfs/etc/canary-marker", &st) == 0 && st.st_uid == 0)
                #expect(!FilePaths.exists(canaryImage + "/" + digest + "/" + ImageOwnership.markerName))

                // A start with aliases, a service environment and binds: every file the helper
                // wrote is named after the guest, and the aliases are the guest's /etc/hosts.
                let request = GuestStartRequest(
                    image: "job", binds: [GuestBind(source: h.work, target: "/__w")], hostAliases: ["svc", "db-1"],
                    ownerPID: h.owner, environment: ["A": "x\ny"])
                var command = Command(HookHarness.agent!, ["guest", "start", "--request-stdin"])
                command.environment = h.environment
                let started = try await SystemCommandRunner().run(
                    command, input: Array(try JSONEncoder().encode(request)), output: .capture(limit: 1 << 20))
                try #require(started.status == .exited(0), "\(started.standardError)")
                let info = try JSONDecoder().decode(GuestInfo.self, from: Data(started.standardOutput.utf8))
                let entries = FilePaths.entries(of: state)
                #expect(!entries.isEmpty)
                for entry in entries {
                    #expect(entry.hasPrefix(info.name + "."), "the helper wrote \(entry)")
                }
                #expect(entries.contains(info.name + ".hosts") && entries.contains(info.name + ".env.conf"))
                // Staging into root-owned directories: the state and staging directories are
                // root's alone; the runner user can neither look in nor plant anything there.
                var mode = stat()
                #expect(stat(state, &mode) == 0 && mode.st_uid == 0 && mode.st_mode & 0o777 == 0o700)
                let binds = h.layout.guestBindsDirectory(info.name)
                #expect(stat(binds, &mode) == 0 && mode.st_uid == 0 && mode.st_mode & 0o077 == 0)
                chmod(h.dir.path, 0o755)
                let plant = Command(
                    "setpriv",
                    [
                        "--reuid=\(Self.user)", "--regid=\(Self.user)", "--clear-groups", "--", "/bin/sh", "-c",
                        "ls \(state); ln -s / \(binds)/9; ln -s / \(state)/\(info.name).hosts.new; echo tried",
                    ])
                let planted = try await SystemCommandRunner().run(plant)
                #expect(planted.standardOutput == "tried\n" && planted.standardError.contains("Permission denied"))
                #expect(FilePaths.entries(of: state).sorted() == entries.sorted())
                #expect(FilePaths.entries(of: binds) == ["0"])
                let hosts = String(
                    decoding: try FilePaths.read("/proc/\(info.leaderPID)/root/etc/hosts"), as: UTF8.self)
                #expect(hosts.hasSuffix("\n127.0.0.1\tsvc db-1\n"), "\(hosts)")
                // Beside the state directory: only the canaries (and the relay directory).
                let beside = Set(FilePaths.entries(of: h.layout.runtimeDirectory)).subtracting(
                    ["guests", "relay", "x.binds", "network.lock", "network.filter"]
                        + ["json", "log", "hosts", "env.conf", "notify"].map { "x." + $0 })
                #expect(beside.isEmpty, "the helper wrote \(beside) beside its state directory")
                // The filter table's record, when there is one: a root-owned 0600 file.
                var record = stat()
                if lstat(h.layout.guestNetworkFilterRecord, &record) == 0 {
                    #expect(
                        record.st_mode & S_IFMT == S_IFREG && record.st_uid == 0 && record.st_mode & 0o077 == 0)
                }
                #expect(await h.runAgent(["stop", info.name], asHelper: true).status == .exited(0))
                #expect(await h.leftoversAfterSettling() == [])
                for canary in canaries {
                    #expect(try FilePaths.read(canary) == Array("canary".utf8), "\(canary)")
                }
            }
        }

        /// A service's `env:` values with `%`, quotes, backslashes, newlines and section headers
        /// reach its processes exactly, and add no directive: the injected `ExecStartPre=` and
        /// `DefaultEnvironment=` never take effect. The guest's console is passive: what the
        /// guest writes to it reaches no host stream.
        @Test func serviceEnvironmentRoundTripsAndTheConsoleIsPassive() async throws {
            try await HookHarness.with { h in
                let injected = [
                    "INJECT_SERVICE": "x\n[Service]\nExecStartPre=/bin/touch /pwned-service\n",
                    "INJECT_MANAGER": "y\"\n[Manager]\nDefaultEnvironment=WHATHELD_EVIL=1\nz",
                    "PERCENT": "%n %% %h %i %",
                    "QUOTES": #"'single' "double" \x \\ \" $HOME ${X} `id`"#,
                    "TRAILING": "end\\",
                    "EMPTY": "",
                ]
                let request = GuestStartRequest(image: "svc", ownerPID: h.owner, environment: injected)
                var command = Command(HookHarness.agent!, ["guest", "start", "--request-stdin"])
                command.environment = h.environment
                let started = try await SystemCommandRunner().run(
                    command, input: Array(try JSONEncoder().encode(request)), output: .capture(limit: 1 << 20))
                try #require(started.status == .exited(0), "\(started.standardError)")
                let info = try JSONDecoder().decode(GuestInfo.self, from: Data(started.standardOutput.utf8))
                // The service's own process (the image's unit), read from the host.
                var server: Int32?
                let end = MonotonicClock.now() + 30
                while server == nil, MonotonicClock.now() < end {
                    server = ProcessTable.allPIDs().first {
                        let args = ProcessTable.commandLine(of: $0)
                        return args.contains("http.server") && args.contains("\(h.servicePort)")
                    }
                    if server == nil { await MonotonicClock.pause(seconds: 0.1) }
                }
                let pid = try #require(server, "the service did not start")
                var environment: [String: String] = [:]
                for entry in try FilePaths.read("/proc/\(pid)/environ").split(separator: 0) {
                    let text = String(decoding: entry, as: UTF8.self)
                    guard let eq = text.firstIndex(of: "=") else { continue }
                    environment[String(text[..<eq])] = String(text[text.index(after: eq)...])
                }
                for (key, value) in injected {
                    #expect(environment[key] == value, "\(key): \(String(describing: environment[key]))")
                }
                #expect(environment["WHATHELD_EVIL"] == nil, "a section header in a value added a directive")
                let root = "/proc/\(info.leaderPID)/root"
                #expect(!FilePaths.exists(root + "/pwned-service"), "a section header in a value added ExecStartPre=")

                // The console: passive on the command line. Guest root has a unit of its own systemd
                // write to /dev/console (a step's private /dev has none): it reaches no host stream
                // (with `--console=read-only` it would land in the guest's log on the host).
                let nspawn = try #require(
                    ProcessTable.allPIDs().first {
                        let args = ProcessTable.commandLine(of: $0)
                        return ProcessTable.comm(of: $0) == "systemd-nspawn" && args.contains("--machine=" + info.name)
                    })
                #expect(ProcessTable.commandLine(of: nspawn).contains("--console=passive"))
                let marker = "WHATHELD-CONSOLE-CANARY"
                let wrote = await h.runAgent(
                    [
                        "exec", info.name, "--", "/bin/sh", "-c",
                        "systemd-run --wait --quiet -p StandardOutput=file:/dev/console /bin/echo \(marker) && echo written",
                    ], asHelper: true)
                #expect(wrote.status == .exited(0) && wrote.text == "written\n", "\(wrote.text)\(wrote.stderr)")
                await MonotonicClock.pause(seconds: 0.5)
                let log = String(decoding: (try? FilePaths.read(h.layout.guestLog(info.name))) ?? [], as: UTF8.self)
                #expect(!log.contains(marker), "the guest's console reached the host: \(log)")
                #expect(!wrote.text.contains(marker) && !wrote.stderr.contains(marker))
                #expect(await h.runAgent(["stop", info.name], asHelper: true).status == .exited(0))
                #expect(await h.leftoversAfterSettling() == [])
            }
        }
    }
}
