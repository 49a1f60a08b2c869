import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Services: `ports:`, `options:`, `env:` and the commands that apply them.
@Suite struct ServiceOptionsTests {
    @Test(
        arguments: [
            ("8080:80", nil, 8080, 80, false),
            ("80", nil, 80, 80, false),
            ("6379/tcp", nil, 6379, 6379, false),
            ("127.0.0.1:9000:90", "127.0.0.1", 9000, 90, false),
            ("[::1]:9000:90", "::1", 9000, 90, false),
            ("0.0.0.0:9000:90", nil, 9000, 90, false),
            (":90", nil, 90, 90, false),
            ("53/udp", nil, 53, 53, true),
            ("5353:5353/UDP", nil, 5353, 5353, true),
        ] as [(String, String?, UInt16, UInt16, Bool)])
    func portMappings(_ text: String, _ address: String?, _ host: UInt16, _ container: UInt16, _ udp: Bool) throws {
        let port = try PortMapping.parse(text)
        #expect(port == PortMapping(hostAddress: address, hostPort: host, containerPort: container, udp: udp))
    }

    @Test func userOptionIsTakenAndAnEmptyOneRefused() throws {
        #expect(try CreateOptions.parse("--user root", owner: "job").user == "root")
        #expect(try CreateOptions.parse("-u 1000:1000 --cpus 1", owner: "job").user == "1000:1000")
        #expect(try CreateOptions.parse("--user=app", owner: "job").user == "app")
        #expect(try CreateOptions.parse("--user=app", owner: "job").ignored.isEmpty)
        let error = #expect(throws: RunnerError.self) { try CreateOptions.parse("--user ''", owner: "job") }
        #expect(error?.input == "job options: --user ")
    }

    @Test(arguments: ["http", "0", "70000:80", "1-3:1-3", "a:b:c:d", "80/sctp", "example.com:8080:80", "8080:53/udp"])
    func badPortMappings(_ text: String) {
        #expect(throws: RunnerError.self) { try PortMapping.parse(text) }
    }

    @Test func udpRemapIsRefusedByName() {
        let error = #expect(throws: RunnerError.self) { try PortMapping.parse("8053:53/udp") }
        #expect(error?.problem.contains("UDP") == true)
    }

    @Test func proxyListenAddresses() throws {
        #expect(try PortMapping.parse("8080:80").listenAddress == "8080")
        #expect(try PortMapping.parse("127.0.0.1:8080:80").listenAddress == "127.0.0.1:8080")
        #expect(try PortMapping.parse("[::1]:8080:80").listenAddress == "[::1]:8080")
        #expect(try PortMapping.parse("8080:80").needsProxy)
        #expect(try !PortMapping.parse("80").needsProxy)
    }

    @Test func claimsRefuseDuplicatesAcrossServices() throws {
        let a = [try PortMapping.parse("8080:80")]
        let b = [try PortMapping.parse("8080:90")]
        let error = #expect(throws: RunnerError.self) {
            try PortMapping.checkClaims([("redis:7", a), ("postgres:16", b)]) { _, _ in true }
        }
        #expect(error?.input == "service postgres:16 port 8080")
        #expect(error?.problem.contains("redis:7") == true)
        // A proxy on another service's own port.
        #expect(throws: RunnerError.self) {
            try PortMapping.checkClaims([("a", [try PortMapping.parse("80")]), ("b", [try PortMapping.parse("80:81")])])
            { _, _ in true }
        }
        // One service listing its own port twice, or two host ports for one service port: fine.
        try PortMapping.checkClaims([
            ("a", [try PortMapping.parse("80"), try PortMapping.parse("8080:80"), try PortMapping.parse("9090:80")])
        ]) { _, _ in true }
    }

    @Test func onAPrivateNetworkOnlyHostPortsAreClaimed() throws {
        var asked: [String] = []
        // Two services on the same container port, published on different host ports: fine.
        try PortMapping.checkClaims(
            [("a", [try PortMapping.parse("8080:80")]), ("b", [try PortMapping.parse("8081:80")])],
            sharedNetwork: false
        ) { address, port in
            asked.append("\(address ?? "*"):\(port)")
            return true
        }
        #expect(asked == ["*:8080", "*:8081"])
        #expect(throws: RunnerError.self) {
            try PortMapping.checkClaims(
                [("a", [try PortMapping.parse("8080:80")]), ("b", [try PortMapping.parse("8080:81")])],
                sharedNetwork: false
            ) { _, _ in true }
        }
        let v6 = #expect(throws: RunnerError.self) {
            try PortMapping.checkClaims([("a", [try PortMapping.parse("[::1]:8080:80")])], sharedNetwork: false) {
                _, _ in
                true
            }
        }
        #expect(v6?.problem.contains("IPv6") == true)
    }

    @Test func memoryAndCPUsAreTheJobsRequestedLimits() throws {
        let options = try CreateOptions.parse("--memory 512m --cpus=1.5", owner: "job")
        #expect(options.limits == GuestLimits(memoryMax: 512 << 20, cpus: 1.5))
        #expect(options.ignored.isEmpty)
        #expect(try CreateOptions.parse("-m 2g", owner: "job").limits.memoryMax == 2 << 30)
        #expect(throws: RunnerError.self) { try CreateOptions.parse("--cpus lots", owner: "job") }
        #expect(throws: RunnerError.self) { try CreateOptions.parse("--memory 12q", owner: "job") }
    }

    @Test func claimsAskTheHostForEveryBoundPort() throws {
        var asked: [String] = []
        try PortMapping.checkClaims([
            ("a", [try PortMapping.parse("127.0.0.1:8080:80"), try PortMapping.parse("53/udp")])
        ]) { address, port in
            asked.append("\(address ?? "*"):\(port)")
            return true
        }
        #expect(asked == ["*:80", "127.0.0.1:8080"])
    }

    @Test func aPortTakenOnTheHostIsRefused() throws {
        // A real listener on an ephemeral port.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        #expect(bound == 0 && listen(fd, 1) == 0)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        let port = UInt16(bigEndian: address.sin_port)
        #expect(!TCPSocket.portIsFree(address: nil, port: port))
        #expect(!TCPSocket.portIsFree(address: "127.0.0.1", port: port))
        #expect(TCPSocket.probe(address: nil, port: port, wait: 0.05) == .open)
        let error = #expect(throws: RunnerError.self) {
            try GuestManager.checkPorts([PortMapping(hostPort: port, containerPort: 80)], image: "svc")
        }
        #expect(error?.input == "service svc port \(port)")
        #expect(error?.problem.contains("already in use") == true)
    }

    @Test(arguments: [
        (
            #"--health-cmd "redis-cli ping" --health-interval 10s"#,
            ["--health-cmd", "redis-cli ping", "--health-interval", "10s"]
        ),
        (#"a 'b c' "d \"e\" \$f \g" h\ i"#, ["a", "b c", #"d "e" $f \g"#, "h i"]),
        ("  x\t\ny  ", ["x", "y"]),
        (#"'' """#, ["", ""]),
        (#"--env=A="x y""#, ["--env=A=x y"]),
    ])
    func shellWords(_ text: String, _ words: [String]) throws {
        #expect(try ShellWords.split(text) == words)
    }

    @Test(arguments: [#"a "b"#, "a 'b", #""\"#])
    func unterminatedQuotes(_ text: String) {
        #expect(throws: RunnerError.self) { try ShellWords.split(text) }
    }

    @Test func fixtureOptions() throws {
        let options = try CreateOptions.parse(
            #"--health-cmd "redis-cli ping" --health-interval 10s --health-timeout 5s --health-retries 5"#,
            owner: "service redis")
        var expected = HealthCheck(command: "redis-cli ping")
        expected.interval = 10
        expected.timeout = 5
        expected.retries = 5
        #expect(options.health == expected)
        #expect(options.ignored.isEmpty)
    }

    @Test func envStartPeriodAndIgnoredOptions() throws {
        let options = try CreateOptions.parse(
            "--cpus 1 -e A=1 --env=B='x y' -eC=3 --health-cmd='pg_isready' --health-start-period=1m30s "
                + "--init --memory=1g --network host -e D",
            owner: "service pg")
        #expect(options.environment == ["A": "1", "B": "x y", "C": "3"])
        #expect(options.health?.command == "pg_isready")
        #expect(options.health?.startPeriod == 90)
        #expect(options.health?.retries == 3 && options.health?.interval == 30)
        #expect(options.ignored == ["--init", "--network host", "-e D (only NAME=VALUE is supported)"])
        #expect(options.limits == GuestLimits(memoryMax: 1 << 30, cpus: 1))
    }

    @Test func noHealthcheckAndOrphanSettings() throws {
        let options = try CreateOptions.parse("--health-cmd true --no-healthcheck", owner: "s")
        #expect(options.health == nil && options.noHealthcheck)
        let orphan = try CreateOptions.parse("--health-retries 2", owner: "s")
        #expect(orphan.health == nil)
        #expect(orphan.ignored == ["--health-retries 2 (no --health-cmd)"])
        #expect(try CreateOptions.parse(nil, owner: "s") == CreateOptions())
    }

    @Test(arguments: ["--health-cmd x --health-interval ten", "--health-cmd x --health-retries -1", "--health-cmd"])
    func badHealthValues(_ text: String) {
        let error = #expect(throws: RunnerError.self) { try CreateOptions.parse(text, owner: "service s") }
        #expect(error?.input.hasPrefix("service s options: --health") == true)
    }

    @Test func unterminatedOptionsNameTheirOwner() {
        let error = #expect(throws: RunnerError.self) {
            try CreateOptions.parse(#"--health-cmd "redis-cli ping"#, owner: "service redis:7")
        }
        #expect(error?.input.hasPrefix("service redis:7 options: ") == true)
        #expect(error?.problem.contains("unterminated double quote") == true)
    }

    @Test(arguments: [
        ("30s", 30.0), ("1m30s", 90), ("500ms", 0.5), ("1.5s", 1.5), ("1h", 3600), ("0", 0), ("2m", 120),
    ])
    func durations(_ text: String, _ seconds: Double) {
        #expect(DockerDuration.seconds(text) == seconds)
    }

    @Test(arguments: ["", "10", "s", "1x", "1.2.3s"])
    func badDurations(_ text: String) {
        #expect(DockerDuration.seconds(text) == nil)
    }

    @Test func environmentDropInQuotesForSystemd() {
        let (text, skipped) = ServiceEnvironment.dropIn([
            "POSTGRES_PASSWORD": #"p"a\ss %n $HOME"#, "MULTI": "a\nb\tc", "EMPTY": "", "BAD-NAME": "x", "NUL": "a\0b",
        ])
        #expect(skipped == ["BAD-NAME", "NUL"])
        #expect(
            text.split(separator: "\n").last
                == #"DefaultEnvironment="EMPTY=" "MULTI=a\nb\tc" "POSTGRES_PASSWORD=p\"a\\ss %%n $HOME""#)
        #expect(text.contains("[Manager]\n"))
        #expect(ServiceEnvironment.escape("\u{1b}x\u{7f}") == #"\x1bx\x7f"#)
    }

    @Test func startRequestCarriesEnvironmentAndPortsAndDecodesOldRequests() throws {
        let request = GuestStartRequest(
            image: "svc", environment: ["K": "v"], ports: [PortMapping(hostPort: 8080, containerPort: 80)])
        let decoded = try JSONDecoder().decode(GuestStartRequest.self, from: try JSONEncoder().encode(request))
        #expect(decoded == request)
        let old = try JSONDecoder().decode(GuestStartRequest.self, from: Data(#"{"image":"svc"}"#.utf8))
        #expect(old.environment.isEmpty && old.ports.isEmpty && old.binds.isEmpty)
    }

    @Test func socketProxyIsATransientSocketWithItsServiceAsAuxiliaryUnit() throws {
        var unit = SocketProxyUnit(name: "runner-port-8080", listen: "8080", target: "127.0.0.1:80")
        var reader = DBusReader(unit.startTransientUnitBody())
        #expect(try reader.string() == "runner-port-8080.socket")
        #expect(try reader.string() == "fail")
        let text = String(decoding: unit.startTransientUnitBody(), as: UTF8.self)
        for part in [
            "Listen", "Stream", "8080", "BindIPv6Only", "both", "runner-port-8080.service",
            "/usr/lib/systemd/systemd-socket-proxyd", "127.0.0.1:80", "CapabilityBoundingSet", "SystemCallFilter",
            "inactive-or-failed",
        ] {
            #expect(text.contains(part), "\(part)")
        }
        unit.listen = "127.0.0.1:8080"
        #expect(!String(decoding: unit.startTransientUnitBody(), as: UTF8.self).contains("BindIPv6Only"))
    }

    func record(_ backend: GuestBackend) -> GuestRecord {
        GuestRecord(
            name: "rg-0123456789ab", image: "svc", rootfs: "/r", backend: backend, status: .running, starterPID: 1,
            leaderPID: 42, binds: [], isAlpine: false)
    }

    @Test func healthCheckStepIsBoundedBySystemd() throws {
        let manager = GuestManager(
            policy: GuestPolicy(layout: HostLayout(root: "/nonexistent")), logger: .init(label: "test"))
        for backend in [GuestBackend.direct, .machined] {
            let unit = try manager.stepUnit(
                record(backend), command: ["/bin/sh", "-c", "redis-cli ping"], environment: [:],
                workingDirectory: nil, timeout: 5)
            #expect(unit.runtimeMax == 5)
            #expect(unit.argv == ["/bin/sh", "-c", "redis-cli ping"])
            #expect(unit.sandbox == UnitSandbox())
        }
        let bare = try manager.stepUnit(
            record(.machined), command: ["true"], environment: [:], workingDirectory: nil, timeout: 0.5)
        #expect(bare.argv == ["/usr/bin/env", "--", "true"])
        #expect(throws: RunnerError.self) {
            try manager.stepUnit(
                record(.direct), command: ["true"], environment: [:], workingDirectory: nil, timeout: -1)
        }
    }

    @Test func helperHealthCheckGoesThroughSudoWithATimeout() async throws {
        let runner = RecordingCommandRunner()
        let helper = HelperGuests(helper: "/usr/local/bin/ci-nspawn-run", layout: HostLayout(), runner: runner)
        _ = try await helper.probe("rg-0123456789ab", command: ["/bin/sh", "-c", "pg_isready"], timeout: 5)
        #expect(
            runner.commands.map(\.argv) == [
                [
                    "sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "exec", "rg-0123456789ab", "--timeout", "5.0",
                    "--", "/bin/sh", "-c", "pg_isready",
                ]
            ])
    }
}
