import FoundationEssentials
import Logging
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
    /// Registry images without an init (busybox-static trees) run jobs and services through the
    /// hook: `systemd-nspawn --as-pid2` guests, steps entered from the relay, the image's
    /// configuration applied as docker applies it.
    @Suite(.serialized, .ociGuests)
    struct OCIGuestTests {
        static let jobConfig = """
            {"architecture":"amd64","os":"linux","config":{"Env":["PATH=/opt/img/bin:/usr/bin:/bin",\
            "FROM_IMAGE=img","OVERRIDDEN=image"],"User":"app","WorkingDir":"/home/app","Cmd":["sh"]}}
            """

        @Test func aJobRunsInABusyboxImageWithoutAnInit() async throws {
            try await OCIHarness.with { h in
                let digest = try await h.addImage("registry.test/busybox:1", config: Self.jobConfig)
                let (prepared, response) = try await h.prepare(image: "registry.test/busybox:1")
                #expect(prepared.status == .exited(0), "\(prepared.stdout)\(prepared.stderr)")
                // Pulled through the seam, with ::group:: progress, credentials on stdin only.
                #expect(prepared.stdout.contains("::group::Pulling registry.test/busybox:1"))
                #expect(prepared.stdout.contains("pulling: resolving manifest"))
                #expect(prepared.stdout.contains("registry.test/busybox:1: \(digest)"))
                let input = String(decoding: try FilePaths.read(h.pullInput), as: UTF8.self)
                #expect(input.contains("\"password\":\"ghs_EXAMPLEgithubTokenNotReal000000000000\""))
                #expect(input.contains("\"username\":\"octocat\""))
                let argv = String(decoding: try FilePaths.read(h.pullArguments), as: UTF8.self)
                #expect(argv == "pull --store-only\npull\n")
                // The job's owner holds the image (the budget cannot take it from under the job)
                // and its guest marked it used.
                let store = RegistryImageStore(layout: h.layout)
                let hex = String(digest.dropFirst("sha256:".count))
                #expect(try store.pins().trees == [hex])
                let used = try #require(store.lookup(try ImageReference(parsing: "registry.test/busybox:1")))
                #expect(used.record.lastUsed >= Int64(time(nil)) - 600)
                #expect(try store.enforceBudget(maxBytes: 1).isEmpty)
                // A budget the image exceeds, enforced when the job ends.
                try AtomicFile.write("RUNNER_IMAGE_CACHE_MAX=1\n", to: h.layout.configFile)
                // An alpine os-release (read by descriptor) sets isAlpine.
                #expect(response.contains("\"isAlpine\":true"), "\(response)")
                let state = try HookPayloads.state(of: response)
                let guest = try #require(state.firstMatch(of: /"guest":"(rg-[0-9a-f]+)"/)?.1).description
                let stateEnvironment = try #require(state.firstMatch(of: /"environment":(\{[^}]*\})/)?.1).description
                // docker's order: image Env under the container's own environment.
                #expect(stateEnvironment.contains("\"FROM_IMAGE\":\"img\""), "\(stateEnvironment)")
                #expect(stateEnvironment.contains("\"PATH\":\"/opt/img/bin:/usr/bin:/bin\""))
                let record = try #require(
                    try GuestManager(policy: GuestPolicy(layout: h.layout), logger: .init(label: "t")).record(guest))
                #expect(record.initSystem == .stub)
                #expect(record.stepUser == ImageUser(uid: 1000, gid: 1000, groups: [2000], home: "/home/app"))

                // Env (image, state, step), PATH (prependPath + image PATH), cwd, the image's user
                // (HOME is the runner's /github/home, as the runner sets it for containers).
                let show = try await h.hook(
                    h.step(
                        ["-c", "echo \"$FROM_IMAGE $FROM_STEP $PATH $(pwd) $(id -u):$(id -g) $(id -G) $HOME\""],
                        guest: guest, stateEnvironment: stateEnvironment))
                #expect(show.status == .exited(0), "\(show.stdout)\(show.stderr)")
                #expect(
                    show.stdout
                        == "img s /__w/bin:/opt/img/bin:/usr/bin:/bin /__w/octo-repo/octo-repo 1000:1000 1000 2000 /github/home\n"
                )
                // No working directory from the runner: the image's WorkingDir.
                let home = try await h.hook(
                    h.step(
                        ["-c", "pwd; echo err >&2"], guest: guest, stateEnvironment: stateEnvironment,
                        workingDirectory: nil))
                #expect(home.stdout == "/home/app\n" && home.stderr == "err\n", "\(home.stdout)\(home.stderr)")
                // Exit codes pass through.
                let failed = try await h.hook(
                    h.step(["-c", "exit 7"], guest: guest, stateEnvironment: stateEnvironment))
                #expect(failed.status == .exited(7))
                // A missing program fails clearly.
                let missing = try await h.hook(
                    h.step(["-c", "exec no-such-program"], guest: guest, stateEnvironment: stateEnvironment))
                #expect(missing.status == .exited(127))
                // So does one the step names itself: the start fails in the guest, the error names
                // the program, and the relay reaps what it started (no zombie is left).
                let absent = try await h.hook(
                    h.step([], guest: guest, stateEnvironment: stateEnvironment, entryPoint: "no-such-program"))
                #expect(absent.status == .exited(1))
                #expect(
                    absent.stdout.contains("no-such-program: could not run the program in the guest"),
                    "\(absent.stdout)")
                let relayPID = try #require(
                    ProcessTable.allPIDs().first {
                        Array(ProcessTable.commandLine(of: $0).dropFirst().prefix(2)) == ["relay", guest]
                    })
                let zombies = ProcessTable.children(of: relayPID).filter { pid in
                    let stat = String(decoding: (try? FilePaths.read("/proc/\(pid)/stat")) ?? [], as: UTF8.self)
                    return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
                }
                #expect(zombies.isEmpty, "the relay left \(zombies)")
                // The step is in the guest's namespaces, not the host's: PID 1 is nspawn's stub.
                let pid1 = try await h.hook(
                    h.step(
                        ["-c", "cat /proc/1/cmdline; echo; cat /proc/self/uid_map"], guest: guest,
                        stateEnvironment: stateEnvironment))
                #expect(pid1.stdout.hasPrefix("(sd-stubinit)"), "\(pid1.stdout)")
                #expect(pid1.stdout.contains("2147352576"), "\(pid1.stdout)")

                // SIGINT mid-step stops it within a few seconds (130, as a shell reports it).
                let (hook, stdout, _) = try h.spawnHook(
                    h.step(
                        ["-c", "echo started; sleep 60; echo not-reached"], guest: guest,
                        stateEnvironment: stateEnvironment))
                let end = MonotonicClock.now() + 20
                while MonotonicClock.now() < end, (try? FilePaths.read(stdout))?.isEmpty ?? true {
                    await MonotonicClock.pause(seconds: 0.05)
                }
                let signalled = MonotonicClock.now()
                hook.signal(SIGINT)
                let status = await hook.wait()
                #expect(MonotonicClock.now() - signalled < 5)
                #expect(status == .exited(130))
                #expect(String(decoding: (try? FilePaths.read(stdout)) ?? [], as: UTF8.self) == "started\n")

                let cleaned = try await h.cleanup(state: state)
                #expect(cleaned.status == .exited(0), "\(cleaned.stderr)")
                #expect(GuestManager(policy: GuestPolicy(layout: h.layout), logger: .init(label: "t")).list().isEmpty)
                // The job ended: its hold released, the image over budget removed.
                #expect(try store.pins().trees.isEmpty)
                #expect(store.list().isEmpty)
                #expect(!FilePaths.exists(h.layout.ociTree(hex)))
            }
        }

        /// A non-root image `USER` reads the workspace but cannot create files in it (the binds
        /// map the runner user to guest root, as docker's own hook leaves it to the runner
        /// user's UID): the job log says so and how to fix it; `options: --user root` runs the
        /// steps as root, which writes there as the runner user.
        @Test func aNonRootUserIsWarnedAndUserRootWritesTheWorkspace() async throws {
            try await OCIHarness.with { h in
                try await h.addImage("registry.test/busybox:1", config: Self.jobConfig)
                let workspace = h.work + "/octo-repo/octo-repo"
                try AtomicFile.write("from the runner\n", to: workspace + "/README")
                for (options, uid) in [(nil, "1000"), ("--cpus 1 --user root", "0")] as [(String?, String)] {
                    let (prepared, response) = try await h.prepare(image: "registry.test/busybox:1", options: options)
                    #expect(prepared.status == .exited(0), "\(prepared.stdout)\(prepared.stderr)")
                    let warned = prepared.stdout.contains("::warning::registry.test/busybox:1: steps run as its USER")
                    #expect(warned == (uid != "0"), "\(prepared.stdout)")
                    let state = try HookPayloads.state(of: response)
                    let guest = try #require(state.firstMatch(of: /"guest":"(rg-[0-9a-f]+)"/)?.1).description
                    let environment = try #require(state.firstMatch(of: /"environment":(\{[^}]*\})/)?.1).description
                    let step = try await h.hook(
                        h.step(
                            ["-c", "id -u; cat README; touch by-\(uid) && echo wrote"], guest: guest,
                            stateEnvironment: environment))
                    #expect(step.stdout.hasPrefix("\(uid)\nfrom the runner\n"), "\(step.stdout)\(step.stderr)")
                    if uid == "0" {
                        #expect(step.status == .exited(0) && step.stdout.hasSuffix("wrote\n"), "\(step.stderr)")
                        // On the host the file is the workspace owner's, not a guest UID's.
                        let created = try #require(lstatOf(workspace + "/by-0"))
                        let owner = try #require(lstatOf(workspace))
                        #expect(created.st_uid == owner.st_uid)
                    } else {
                        #expect(step.status != .exited(0))
                        #expect(!FilePaths.exists(workspace + "/by-1000"))
                    }
                    let cleaned = try await h.cleanup(state: state)
                    #expect(cleaned.status == .exited(0), "\(cleaned.stderr)")
                }
            }
        }

        /// `ports: ["HOST:CONTAINER"]` on a no-init service, on the private job network (the
        /// default): the host port is DNATed to the guest's own port, no proxy needed, and the
        /// host reaches it there, as for a booted service.
        @Test func aNoInitServicePublishesARemappedPort() async throws {
            try await OCIHarness.with { h in
                let port = UInt16.random(in: 30000...34999)
                let hostPort = port + 5000
                let config = """
                    {"config":{"Env":["PATH=/usr/bin:/bin"],\
                    "Cmd":["sh","-c","while :; do echo hello-from-\(port) | nc -l -p \(port); done"]}}
                    """
                try await h.addImage("registry.test/echo:1", config: config)
                let service = h.payloads.serviceJSON(image: "registry.test/echo:1", ports: ["\(hostPort):\(port)"])
                let (prepared, response) = try await h.prepare(image: nil, services: service)
                #expect(prepared.status == .exited(0), "\(prepared.stdout)\(prepared.stderr)")
                #expect(response.contains("\"\(port)\":\"\(hostPort)\""), "\(response)")
                // (nc may end by its timeout: its output is what counts.)
                let answer = try await SystemCommandRunner().run(
                    Command(OCIHarness.busybox, ["nc", "-w", "3", "127.0.0.1", "\(hostPort)"]), input: [],
                    output: .captured)
                #expect(answer.standardOutput.contains("hello-from-\(port)"), "\(answer)")
                let cleaned = try await h.cleanup(state: try HookPayloads.state(of: response))
                #expect(cleaned.status == .exited(0), "\(cleaned.stderr)")
            }
        }

        @Test func aPullThatFailsNamesTheReferenceAndTheRegistrysAnswer() async throws {
            try await OCIHarness.with { h in
                let (prepared, _) = try await h.prepare(image: "registry.test/nothing:9")
                #expect(prepared.status == .exited(1))
                let error = try #require(prepared.stdout.split(separator: "\n").first { $0.hasPrefix("::error::") })
                #expect(error.contains("registry.test/nothing:9"), "\(error)")
                #expect(error.contains("manifest unknown"), "\(error)")
                #expect(!prepared.stdout.contains("ghs_EXAMPLE") && !prepared.stderr.contains("ghs_EXAMPLE"))
            }
        }

        /// The pattern of official database images: the entry point script reads the service's
        /// `env:` (POSTGRES_PASSWORD), initialises its data from it, then execs `Cmd`, which
        /// serves it; the job's step checks what it serves.
        @Test func aServiceEntrypointInitialisesFromItsEnvironment() async throws {
            try await OCIHarness.with { h in
                let port = UInt16.random(in: 30000...39999)
                let entrypoint = """
                    #!/bin/sh
                    set -e
                    mkdir -p "$PGDATA"
                    echo "initialised $POSTGRES_DB for $POSTGRES_USER as $(id -u) sum $(printf %s "$POSTGRES_PASSWORD" | md5sum | cut -c1-12)" > "$PGDATA/state"
                    echo "entrypoint ran"
                    exec "$@"

                    """
                let config = """
                    {"config":{"Env":["PATH=/usr/bin:/bin","PGDATA=/var/lib/pgish","POSTGRES_USER=postgres"],\
                    "Entrypoint":["/docker-entrypoint.sh"],\
                    "Cmd":["sh","-c","while :; do nc -l -p \(port) < \\"$PGDATA/state\\"; done"],\
                    "ExposedPorts":{"\(port)/tcp":{}}}}
                    """
                try await h.addImage("registry.test/pgish:16", config: config, osID: "debian") { rootfs in
                    try AtomicFile.write(entrypoint, to: rootfs + "/docker-entrypoint.sh", mode: 0o755)
                }
                try await h.addImage("registry.test/busybox:1", config: Self.jobConfig)
                let password = "pw-\(UInt32.random(in: 0...UInt32.max))-'quoted' $HOME"
                let service = h.payloads.serviceJSON(
                    image: "registry.test/pgish:16", ports: ["\(port)"],
                    environment: ["POSTGRES_PASSWORD": password, "POSTGRES_DB": "app"])
                let (prepared, response) = try await h.prepare(image: "registry.test/busybox:1", services: service)
                #expect(prepared.status == .exited(0), "\(prepared.stdout)\(prepared.stderr)")
                let state = try HookPayloads.state(of: response)
                let guest = try #require(state.firstMatch(of: /"guest":"(rg-[0-9a-f]+)"/)?.1).description
                let serviceGuest = try #require(state.firstMatch(of: /"services":\["(rg-[0-9a-f]+)"/)?.1).description
                #expect(response.contains("\"isAlpine\":true"))

                let md5 = try await SystemCommandRunner().output(
                    Command("/bin/sh", ["-c", "printf %s \"$1\" | md5sum | cut -c1-12", "sh", password]))
                let check = try await h.hook(
                    h.step(["-c", "nc pgish \(port) </dev/null"], guest: guest, stateEnvironment: "{}"))
                #expect(check.status == .exited(0), "\(check.stderr)")
                #expect(
                    check.stdout == "initialised app for postgres as 0 sum \(md5.trimmedWhitespace)\n",
                    "\(check.stdout)\(check.stderr)")

                // The password reached the service through a 0600 file, never a command line or
                // the guest's log.
                let manager = GuestManager(policy: GuestPolicy(layout: h.layout), logger: .init(label: "t"))
                let record = try #require(try manager.record(serviceGuest))
                for pid in ProcessTable.allPIDs() {
                    let args = ProcessTable.commandLine(of: pid).joined(separator: " ")
                    #expect(!args.contains(password), "\(pid): \(args)")
                }
                #expect(record.initSystem == .stub)
                #expect(manager.log(serviceGuest, lines: 50).contains("entrypoint ran"))
                #expect(!manager.log(serviceGuest, lines: 500).contains(password))
                var st = stat()
                #expect(stat(h.layout.guestEnvironmentFile(serviceGuest), &st) == 0)
                #expect(st.st_mode & 0o777 == 0o600)

                let cleaned = try await h.cleanup(state: state)
                #expect(cleaned.status == .exited(0), "\(cleaned.stderr)")
                #expect(!FilePaths.exists(h.layout.guestEnvironmentFile(serviceGuest)))
            }
        }

        @Test func aFailingServiceShowsTheEndOfItsLog() async throws {
            try await OCIHarness.with { h in
                let config = """
                    {"config":{"Entrypoint":["sh","-c","echo boom-from-the-service; exec sleep 600"]}}
                    """
                try await h.addImage("registry.test/broken:1", config: config)
                let service = h.payloads.serviceJSON(
                    image: "registry.test/broken:1", ports: [], environment: [:],
                    options: "--health-cmd false --health-interval 1s --health-retries 1")
                let (prepared, _) = try await h.prepare(image: nil, services: service)
                #expect(prepared.status == .exited(1))
                let error = try #require(prepared.stdout.split(separator: "\n").first { $0.hasPrefix("::error::") })
                #expect(error.contains("health check"), "\(error)")
                #expect(error.contains("boom-from-the-service"), "\(error)")
                #expect(GuestManager(policy: GuestPolicy(layout: h.layout), logger: .init(label: "t")).list().isEmpty)
            }
        }
    }
}
