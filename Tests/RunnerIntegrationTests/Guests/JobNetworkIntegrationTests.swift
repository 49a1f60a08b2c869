import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A network namespace this test owns, joined to the host by a veth: its two addresses are the
/// only non-loopback destinations the tests send packets to. `.2` runs an HTTP server (the
/// address the test blocks), `.3` an HTTP server (the control) and a DNS server that answers
/// every A query with 203.0.113.7 (the guests' resolver, never contacted otherwise).
struct TestNetworkNamespace {
    let name: String
    let hostInterface: String
    /// The /29's first three octets and base: `.1` is the host's end.
    let prefix: String
    var processes: [ChildProcess] = []

    var blocked: String { prefix + ".2" }
    var control: String { prefix + ".3" }

    static let dnsServer = """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((sys.argv[1], 53))
        while True:
            d, a = s.recvfrom(512)
            i = 12
            while d[i]:
                i += d[i] + 1
            qtype = d[i + 1:i + 3]
            question = d[12:i + 5]
            a_record = qtype == b"\\x00\\x01"
            head = d[:2] + b"\\x81\\x80" + b"\\x00\\x01" + (b"\\x00\\x01" if a_record else b"\\x00\\x00") + b"\\x00\\x00\\x00\\x00"
            answer = b"\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x3c\\x00\\x04" + bytes([203, 0, 113, 7]) if a_record else b""
            s.sendto(head + question + answer, a)
        """

    static func run(_ arguments: [String]) async throws {
        let command = Command("ip", arguments)
        let status = try await Spawner.spawn(command, options: SpawnOptions(standardOutput: .devNull)).wait()
        #expect(status == .exited(0), "\(command)")
    }

    /// Creates the namespace, its link and its servers; waits until the servers answer.
    static func create() async throws -> TestNetworkNamespace {
        let pid = getpid()
        var lab = TestNetworkNamespace(
            name: "rtn\(pid)", hostInterface: "rtv\(pid)", prefix: "198.18.\(pid % 250 + 1)")
        try await run(["netns", "add", lab.name])
        try await run(["link", "add", lab.hostInterface, "type", "veth", "peer", "name", "eth0", "netns", lab.name])
        try await run(["address", "add", lab.prefix + ".1/29", "dev", lab.hostInterface])
        try await run(["link", "set", lab.hostInterface, "up"])
        for address in [lab.blocked, lab.control] {
            try await run(["-n", lab.name, "address", "add", address + "/29", "dev", "eth0"])
        }
        try await run(["-n", lab.name, "link", "set", "eth0", "up"])
        try await run(["-n", lab.name, "link", "set", "lo", "up"])
        try await run(["-n", lab.name, "route", "add", "default", "via", lab.prefix + ".1"])
        let quiet = SpawnOptions(standardOutput: .devNull, standardError: .devNull)
        for address in [lab.blocked, lab.control] {
            lab.processes.append(
                try Spawner.spawn(
                    Command(
                        "ip",
                        ["netns", "exec", lab.name, "/usr/bin/python3", "-m", "http.server", "8000", "--bind", address]),
                    options: quiet))
        }
        lab.processes.append(
            try Spawner.spawn(
                Command("ip", ["netns", "exec", lab.name, "/usr/bin/python3", "-c", dnsServer, lab.control]),
                options: quiet))
        let end = MonotonicClock.now() + 10
        for address in [lab.blocked, lab.control] {
            while TCPSocket.probe(address: address, port: 8000, wait: 0) == .refused, MonotonicClock.now() < end {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        return lab
    }

    /// Stops the servers and removes the namespace (its veth goes with it).
    func remove() async {
        for process in processes {
            process.signal(SIGKILL)
            _ = await process.wait()
        }
        _ = try? await Spawner.spawn(Command("ip", ["netns", "delete", name])).wait()
        _ = try? await Spawner.spawn(
            Command("ip", ["link", "delete", hostInterface]), options: SpawnOptions(standardError: .devNull)
        ).wait()
    }
}

extension GuestSuites {
    /// Issue #14 from a step running as root in its guest: the job's private network (the host's
    /// loopback and own addresses, a blocked address, a service by name, a published port, DNS)
    /// and the job's limits (a memory hog, a fork bomb). Packets go only to loopback, the job's
    /// own bridge, and the namespace the test creates.
    @Suite(
        .serialized,
        .enabled(
            if: HookHarness.isAvailable && TestHost.which("nft") != nil && TestHost.which("ip") != nil,
            "needs root, systemd-nspawn, mmdebstrap, nft, ip and the built runner-agent and runner-hook")
    )
    struct JobNetworkIntegrationTests {
        @Test func rulesetsAreValidNftables() async throws {
            let names = GuestNetworkNames(layout: HostLayout(root: "/tmp/runner-nft-check-\(getpid())"))
            let attachment = GuestNetworkAttachment(
                id: "0123abcd", bridge: names.bridge("0123abcd"), subnet: "10.213.9", address: "10.213.9.2",
                ports: [
                    PortMapping(hostPort: 8080, containerPort: 80),
                    PortMapping(hostPort: 53, containerPort: 53, udp: true),
                ])
            for rules in [
                GuestNetworkRules.filterTable(names, blocked: ["10.9.0.0/16", "fd00:1::/64", "192.0.2.7"]),
                GuestNetworkRules.jobTable(names, id: "0123abcd", attachments: [attachment]),
                GuestNetworkRules.jobTable(names, id: "0123abcd", attachments: [attachment], replacing: false),
            ] {
                // -c: checked by the kernel's parser, applied nowhere.
                let result = try await SystemCommandRunner().run(
                    Command("nft", ["-c", "-f", "-"]), input: Array(rules.utf8), output: .captured)
                #expect(result.status == .exited(0), "\(result.standardError)\n\(rules)")
            }
        }

        /// A job's network leaves the runner's filter table alone while it is exactly as last
        /// applied, and applies it again when it is not: here its forward chain (the blocked
        /// addresses' reject rules) is flushed between two jobs, and the next job puts the rules
        /// back before its guest could start. While no nftables transaction happened since (the
        /// ruleset's generation), a job runs no `nft` at all; after someone else's (a table of
        /// the test's own), it lists the table once; after its own (a job's published ports),
        /// the record stays current.
        @Test func aChangedFilterTableIsAppliedAgainByTheNextJob() async throws {
            let dir = try TemporaryDirectory("filter-again")
            defer { dir.remove() }
            let layout = HostLayout(root: dir.path)
            try FilePaths.createDirectory(layout.runtimeDirectory, mode: 0o755)
            let names = GuestNetworkNames(layout: layout)
            let runner = InputRecordingRunner()
            let network = JobNetwork(
                policy: GuestNetworkPolicy(names: names), layout: layout, runner: runner, logger: Logger(label: "t"))
            let system = SystemCommandRunner()
            let ids = ["0000aa01", "0000aa02", "0000aa03", "0000aa04", "0000aa05"]
            let other = "rntest_other_\(getpid())"
            func cleanUp() async {
                for id in ids { await network.remove(id: id) }
                _ = try? await system.run(Nft().deleteTable(family: "inet", name: names.table))
                _ = try? await system.run(Nft().deleteTable(family: "ip", name: other))
            }
            await cleanUp()
            do {
                func forwardRules() async throws -> Int {
                    let listed = try await system.output(
                        Command("nft", ["-j", "list", "chain", "inet", names.table, "forward"]))
                    return listed.components(separatedBy: "\"rule\"").count - 1
                }
                func filterApplies() -> Int {
                    runner.inputs.filter { $0.contains("table inet \(names.table) {") }.count
                }
                _ = try await network.attach(id: ids[0], others: [])
                #expect(filterApplies() == 1)
                #expect(try await forwardRules() == 2)
                let generation = try #require(network.readFilterRecord()?.generation)
                let runs = runner.commands.count
                _ = try await network.attach(id: ids[1], others: [])
                #expect(runner.commands.count == runs, "no nft while nothing changed: \(runner.commands.suffix(2))")
                try await system.run(Command("nft", ["flush", "chain", "inet", names.table, "forward"])).checked(
                    Command("nft", ["flush", "chain"]))
                #expect(try await forwardRules() == 0)
                _ = try await network.attach(id: ids[2], others: [])
                #expect(filterApplies() == 2)
                #expect(try await forwardRules() == 2)
                #expect(try #require(network.readFilterRecord()?.generation) != generation)
                // Someone else's transaction: listed, not applied; the record takes the generation.
                try await system.run(Command("nft", ["add", "table", "ip", other])).checked(Command("nft"))
                _ = try await network.attach(id: ids[3], others: [])
                #expect(filterApplies() == 2)
                #expect(runner.commands.last?.argv == Nft().showTable(family: "inet", name: names.table).argv)
                // Our own: a job's published ports. The next job runs no nft.
                let attachment = GuestNetworkAttachment(
                    id: ids[3], bridge: names.bridge(ids[3]), subnet: "10.213.250", address: "10.213.250.2",
                    ports: [PortMapping(hostPort: 18080, containerPort: 80)])
                try await network.applyJobTable(id: ids[3], attachments: [attachment])
                let afterPorts = runner.commands.count
                _ = try await network.attach(id: ids[4], others: [])
                #expect(runner.commands.count == afterPorts, "\(runner.commands.suffix(2))")
            } catch {
                await cleanUp()
                throw error
            }
            await cleanUp()
        }

        @Test func aStepSeesOnlyItsJobsNetwork() async throws {
            let lab = try await TestNetworkNamespace.create()
            let loopbackServer = try Spawner.spawn(
                Command("/usr/bin/python3", ["-m", "http.server", "0", "--bind", "127.0.0.1"]),
                options: SpawnOptions(standardOutput: .devNull, standardError: .devNull))
            do {
                try await HookHarness.with { h in
                    try await check(h, lab: lab, loopbackServer: loopbackServer.pid)
                }
            } catch {
                loopbackServer.signal(SIGKILL)
                _ = await loopbackServer.wait()
                await lab.remove()
                throw error
            }
            loopbackServer.signal(SIGKILL)
            _ = await loopbackServer.wait()
            await lab.remove()
        }

        /// `RUNNER_GUEST_NETWORK=host` keeps the shared network: the service's own port is the
        /// host's, a mapped port goes through the in-guest proxy, the alias is 127.0.0.1, and no
        /// bridge or table of the job appears.
        @Test func theHostNetworkKeepsTodaysBehaviour() async throws {
            try await HookHarness.with { h in
                let config = String(decoding: try FilePaths.read(h.layout.configFile), as: UTF8.self)
                try AtomicFile.write(config + "RUNNER_GUEST_NETWORK=host\n", to: h.layout.configFile)
                let responseFile = try h.newResponseFile()
                let hostPort = h.freePort()
                let prepared = try await h.hook(
                    try h.prepareJob(
                        responseFile: responseFile, services: h.serviceJSON(ports: ["\(hostPort):\(h.servicePort)"])),
                    responseFile: responseFile)
                #expect(prepared.status == .exited(0), "\(prepared.text)\(prepared.stderr)")
                let state = try HookHarness.state(of: prepared.response)
                #expect(TCPSocket.accepts(port: h.servicePort), "the service's own port is the host's")
                #expect(HookHarness.httpStatusLine(port: hostPort).hasPrefix("HTTP/1.0 200"))
                #expect(await HookHarness.networkLeftovers(layout: h.layout) == [])
                let step = try await h.hook(
                    try h.runScriptStep("getent hosts svc\n", state: state))
                #expect(step.text.hasPrefix("127.0.0.1"), "\(step.text)\(step.stderr)")
                let cleanup = try await h.hook(try h.cleanupJob(state: state))
                #expect(cleanup.status == .exited(0), "\(cleanup.stderr)")
                #expect(await h.leftoversAfterSettling() == [])
            }
        }

        /// The job's limits are the job's, not each guest's: its guests together stay within
        /// RUNNER_JOB_MEMORY_MAX (a hog of 60 % in the service and one in the job container: either
        /// alone runs, together one is killed), and a fork bomb in the service guest hits the
        /// job's RUNNER_JOB_TASKS_MAX. The job's parent cgroup goes with the job.
        @Test(.enabled(if: FilePaths.exists("/sys/fs/cgroup/memory/cgroup.procs"), "needs the v1 memory controller"))
        func aJobsGuestsShareItsLimits() async throws {
            try await HookHarness.with { h in
                let config = String(decoding: try FilePaths.read(h.layout.configFile), as: UTF8.self)
                try AtomicFile.write(
                    config + "RUNNER_JOB_MEMORY_MAX=400M\nRUNNER_JOB_TASKS_MAX=150\n", to: h.layout.configFile)
                let responseFile = try h.newResponseFile()
                let prepared = try await h.hook(
                    try h.prepareJob(responseFile: responseFile, services: h.serviceJSON()), responseFile: responseFile)
                #expect(prepared.status == .exited(0), "\(prepared.text)\(prepared.stderr)")
                let state = try HookHarness.state(of: prepared.response)
                let manager = GuestManager(policy: GuestPolicy(layout: h.layout), logger: .init(label: "test"))
                let records = manager.list()
                let job = try #require(records.first?.limitsJob)
                #expect(records.count == 2 && records.allSatisfy { $0.limitsJob == job })
                let guest = try #require(
                    state.firstRange(of: "\"guest\":\"").map { String(state[$0.upperBound...].prefix(15)) })
                let service = try #require(records.first { $0.name != guest }?.name)
                let parent = "/sys/fs/cgroup/memory/runner-guests/job-\(job)"
                let limit = String(
                    decoding: (try? FilePaths.read(parent + "/memory.limit_in_bytes")) ?? [], as: UTF8.self)
                #expect(limit == "\(400 << 20)\n")
                for record in records { #expect(FilePaths.exists(parent + "/" + record.name), "\(record.name)") }

                // 240 MiB, written (so resident), held for `seconds`.
                func hog(_ seconds: Int) -> String {
                    "import time; x = b'x' * (240 << 20); time.sleep(\(seconds)); print('held')"
                }
                let alone = try await h.hook(try h.runScriptStep("python3 -c \"\(hog(0))\"\n", state: state))
                #expect(alone.status == .exited(0) && alone.text.contains("held"), "\(alone.text)\(alone.stderr)")
                let serviceAlone = try await manager.probe(service, command: ["python3", "-c", hog(0)], timeout: 30)
                #expect(serviceAlone.status == .exited(0), "\(serviceAlone.standardError)")

                async let held = manager.probe(service, command: ["python3", "-c", hog(8)], timeout: 30)
                try await Task.sleep(for: .seconds(3))
                let together = try await h.hook(try h.runScriptStep("python3 -c \"\(hog(0))\"\n", state: state))
                let serviceHeld = try await held
                #expect(
                    !(together.status == .exited(0) && serviceHeld.status == .exited(0)),
                    "two hogs of 60 % each in one job: \(together.text) \(serviceHeld.standardOutput)")
                // The kernel's OOM killer ended one of them (counted in the victim's own cgroup).
                let kills = records.compactMap { GuestCgroups().oomKills(guest: $0.name) }.reduce(0, +)
                #expect(kills > 0, "\(together.text) \(serviceHeld.standardOutput)")

                // A fork bomb in the service guest: the job's tasks limit (the guest has none of its
                // own), its failed forks counted in the guest's cgroup.
                let pids = "/sys/fs/cgroup/pids/runner-guests/job-\(job)"
                #expect(String(decoding: (try? FilePaths.read(pids + "/pids.max")) ?? [], as: UTF8.self) == "150\n")
                #expect(
                    String(decoding: (try? FilePaths.read(pids + "/\(service)/pids.max")) ?? [], as: UTF8.self)
                        == "max\n")
                let bomb = try await manager.probe(
                    service, command: ["sh", "-c", "i=0; while [ $i -lt 300 ]; do sleep 30 & i=$((i+1)); done; wait"],
                    timeout: 5)
                let events = String(
                    decoding: (try? FilePaths.read(pids + "/\(service)/pids.events")) ?? [], as: UTF8.self)
                #expect(
                    events.split(separator: "\n").contains { $0.hasPrefix("max ") && $0 != "max 0" },
                    "\(events) \(bomb.status) \(bomb.standardError.suffix(300))")
                #expect(bomb.status != .exited(0))
                let after = try await h.hook(try h.runScriptStep("echo alive\n", state: state))
                #expect(after.status == .exited(0) && after.text.contains("alive"), "\(after.text)\(after.stderr)")

                let cleanup = try await h.hook(try h.cleanupJob(state: state))
                #expect(cleanup.status == .exited(0), "\(cleanup.stderr)")
                #expect(await h.leftoversAfterSettling() == [])
                #expect(!FilePaths.exists(parent), "the job's parent cgroup goes with the job")
            }
        }

        /// The TCP port a process of ours listens on (from /proc/net/tcp).
        func listeningPort(of pid: Int32) async throws -> UInt16 {
            let end = MonotonicClock.now() + 10
            while MonotonicClock.now() < end {
                var inodes = Set<String>()
                for fd in FilePaths.entries(of: "/proc/\(pid)/fd") {
                    if let target = SymbolicLink.target("/proc/\(pid)/fd/\(fd)"), target.hasPrefix("socket:[") {
                        inodes.insert(String(target.dropFirst(8).dropLast()))
                    }
                }
                let table = String(decoding: (try? FilePaths.read("/proc/net/tcp")) ?? [], as: UTF8.self)
                for line in table.split(separator: "\n").dropFirst() {
                    let fields = line.split(separator: " ")
                    guard fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])) else { continue }
                    let local = fields[1].split(separator: ":")
                    if local.count == 2, let port = UInt16(local[1], radix: 16) { return port }
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw RunnerError(.timeout, input: "pid \(pid)", problem: "never listened")
        }

        func check(_ h: HookHarness, lab: TestNetworkNamespace, loopbackServer: Int32) async throws {
            let loopbackPort = try await listeningPort(of: loopbackServer)
            #expect(HookHarness.httpStatusLine(port: loopbackPort).hasPrefix("HTTP/1.0 200"), "the canary serves")
            // The admin blocks the test's address; limits for every guest of the job.
            let config = String(decoding: try FilePaths.read(h.layout.configFile), as: UTF8.self)
            try AtomicFile.write(
                config + "RUNNER_GUEST_BLOCKED_NETS=\(lab.blocked)/32\nRUNNER_JOB_MEMORY_MAX=256M\n"
                    + "RUNNER_JOB_TASKS_MAX=200\nRUNNER_JOB_CPUS=1\n",
                to: h.layout.configFile)
            // The host's resolver: systemd-resolved's stub (dropped) and the test's server.
            try FilePaths.createDirectory(h.layout.path("/etc"))
            try AtomicFile.write(
                "nameserver 127.0.0.53\nnameserver \(lab.control)\n", to: h.layout.path("/etc/resolv.conf"))

            let responseFile = try h.newResponseFile()
            let hostPort = h.freePort()
            let prepared = try await h.hook(
                try h.prepareJob(
                    responseFile: responseFile, services: h.serviceJSON(ports: ["\(hostPort):\(h.servicePort)"])),
                responseFile: responseFile)
            #expect(prepared.status == .exited(0), "\(prepared.text)\(prepared.stderr)")
            let state = try HookHarness.state(of: prepared.response)
            let records = GuestManager(policy: GuestPolicy(layout: h.layout), logger: .init(label: "test")).list()
            let networks = records.compactMap(\.network)
            #expect(networks.count == 2 && Set(networks.map(\.id)).count == 1, "one network for the job's guests")
            let gateway = try #require(networks.first?.gateway)

            // A published port from the host.
            #expect(HookHarness.httpStatusLine(port: hostPort).hasPrefix("HTTP/1.0 200"))

            let script = """
                probe() { if timeout 5 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; then echo "$3 open"; else echo "$3 closed"; fi; }
                echo "uid $(id -u)"
                probe 127.0.0.1 \(loopbackPort) loopback
                probe \(gateway) \(loopbackPort) host-address
                probe \(lab.blocked) 8000 blocked
                probe \(lab.control) 8000 control
                probe svc \(h.servicePort) service
                getent ahostsv4 runner-test.example | head -n1
                cat /etc/resolv.conf

                """
            let step = try await h.hook(try h.runScriptStep(script, state: state))
            #expect(step.status == .exited(0), "\(step.text)\(step.stderr)")
            for line in [
                "uid 0", "loopback closed", "host-address closed", "blocked closed", "control open", "service open",
                "203.0.113.7",
            ] {
                #expect(step.text.contains(line), "\(line): \(step.text)")
            }
            #expect(!step.text.contains("127.0.0.53"), "the loopback stub is not handed to guests")

            // The ruleset holds the metadata addresses and the admin's network (read, never probed).
            let names = GuestNetworkNames(layout: h.layout)
            let table = try await SystemCommandRunner().output(Nft().listTable(family: "inet", name: names.table))
            let elements = JobNetwork.setElements(json: table)
            // The job's nat table (masquerade, published ports) exists while the job runs.
            let tables = JobNetwork.tables(json: try await SystemCommandRunner().output(Nft().listTables()))
            #expect(tables.contains { $0.family == "ip" && $0.name == names.jobTable(networks[0].id) })
            for address in GuestNetworkRules.metadataAddresses + [lab.blocked] {
                #expect(elements.contains(address), "\(address) in \(elements)")
            }

            // Limits: on the job's parent cgroup; a memory hog and a fork bomb fail their own step only.
            let job = try #require(
                state.firstRange(of: "\"guest\":\"").map { String(state[$0.upperBound...].prefix(15)) })
            let cgroups = "/sys/fs/cgroup"
            let limitsJob = try #require(records.first?.limitsJob)
            if FilePaths.exists(cgroups + "/pids/cgroup.procs") {
                let pids = try FilePaths.read(cgroups + "/pids/runner-guests/job-\(limitsJob)/pids.max")
                #expect(String(decoding: pids, as: UTF8.self) == "200\n")
            }
            let hog = try await h.hook(
                try h.runScriptStep("python3 -c \"x = b'x' * (1 << 30)\"\necho survived\n", state: state))
            #expect(hog.status != .exited(0))
            let memory = cgroups + "/memory/runner-guests/job-\(limitsJob)/\(job)"
            let oom = String(decoding: (try? FilePaths.read(memory + "/memory.oom_control")) ?? [], as: UTF8.self)
            #expect(
                hog.text.contains("ran out of memory"),
                "\(hog.text)\(hog.stderr) \(oom) \(FilePaths.entries(of: memory).filter { !$0.contains(".") })")
            #expect(!hog.text.contains("survived"))
            let bomb = try await h.hook(
                try h.runScriptStep("sh -c 'while :; do sleep 60 & done'\necho survived\n", state: state))
            #expect(bomb.status != .exited(0), "\(bomb.text)\(bomb.stderr)")
            let after = try await h.hook(try h.runScriptStep("echo alive\n", state: state))
            #expect(after.status == .exited(0) && after.text.contains("alive"), "\(after.text)\(after.stderr)")
            #expect(HookHarness.httpStatusLine(port: hostPort).hasPrefix("HTTP/1.0 200"), "the service lives on")

            let cleanup = try await h.hook(try h.cleanupJob(state: state))
            #expect(cleanup.status == .exited(0), "\(cleanup.stderr)")
            #expect(await h.leftoversAfterSettling() == [])
            #expect(!TCPSocket.accepts(port: hostPort))
        }
    }
}

/// The system's commands, with the standard input each was given (the last one's last).
final class InputRecordingRunner: CommandRunner {
    private let system = SystemCommandRunner()
    private let recorded = Mutex<(inputs: [String], commands: [Command])>(([], []))

    /// The standard input of each command run that had one, in order, as text.
    var inputs: [String] { recorded.withLock { $0.inputs } }

    /// Every command run, in order.
    var commands: [Command] { recorded.withLock { $0.commands } }

    func run(_ command: Command, input: [UInt8]?, output: OutputMode) async throws(RunnerError) -> CommandResult {
        recorded.withLock {
            $0.commands.append(command)
            if let input { $0.inputs.append(String(decoding: input, as: UTF8.self)) }
        }
        return try await system.run(command, input: input, output: output)
    }

    func start(_ command: Command, options: StartOptions) throws(RunnerError) -> any ProcessHandle {
        try system.start(command, options: options)
    }
}
