import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// POSIX shell word splitting without expansion: what docker's CLI does to `options:` and what
/// the reference hooks do to re-split arguments (`shlex.split`).
public enum ShellWords {
    /// Splits `text` into words: blanks separate words; `'…'` is literal; in `"…"` a backslash
    /// escapes `"`, `\`, `$`, `` ` `` and a newline; outside quotes a backslash escapes the next
    /// character. No variable, command or glob expansion.
    public static func split(_ text: String) throws(RunnerError) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var iterator = Array(text).makeIterator()
        func unterminated(_ what: String) -> RunnerError {
            RunnerError(
                .invalidInput, input: text, problem: "has an unterminated \(what)",
                fix: "close the quote, or escape it with a backslash")
        }
        while let c = iterator.next() {
            switch c {
            case " ", "\t", "\n", "\r":
                if inWord { words.append(word) }
                word = ""
                inWord = false
            case "'":
                inWord = true
                while true {
                    guard let q = iterator.next() else { throw unterminated("single quote") }
                    if q == "'" { break }
                    word.append(q)
                }
            case "\"":
                inWord = true
                while true {
                    guard let q = iterator.next() else { throw unterminated("double quote") }
                    if q == "\"" { break }
                    if q == "\\" {
                        guard let next = iterator.next() else { throw unterminated("double quote") }
                        if next == "\n" { continue }
                        if !"\"\\$`".contains(next) { word.append("\\") }
                        word.append(next)
                    } else {
                        word.append(q)
                    }
                }
            case "\\":
                guard let next = iterator.next() else {
                    inWord = true
                    word.append("\\")
                    continue
                }
                if next == "\n" { continue }
                inWord = true
                word.append(next)
            default:
                inWord = true
                word.append(c)
            }
        }
        if inWord { words.append(word) }
        return words
    }
}

/// A port a workflow maps (`ports:`): `80`, `8080:80`, `127.0.0.1:8080:80`, `53/udp`.
public struct PortMapping: Sendable, Hashable, Codable {
    /// The address the host side binds; nil: every address.
    public var hostAddress: String?
    /// The host side; equal to ``containerPort`` when the workflow gave none (guests share the
    /// host's network, so the service's own port is already the host's).
    public var hostPort: UInt16
    /// The port the service listens on in its guest.
    public var containerPort: UInt16
    public var udp: Bool

    public init(hostAddress: String? = nil, hostPort: UInt16, containerPort: UInt16, udp: Bool = false) {
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.udp = udp
    }

    /// Whether the host side needs a proxy: the host port differs from the service's own port.
    /// (With equal ports the service's own listener is the host's, on the address it chooses.)
    public var needsProxy: Bool { hostPort != containerPort }

    /// Refuses host ports claimed twice (by two services, or a proxy on another service's own
    /// port), UDP mappings that would need a proxy, and ports `isFree` says are taken on the
    /// host: a service's own port (every address) and a proxy's host side.
    public static func checkClaims(
        _ services: [(owner: String, ports: [PortMapping])], isFree: (String?, UInt16) -> Bool
    ) throws(RunnerError) {
        var owners: [UInt16: String] = [:]
        func claim(_ port: UInt16, _ owner: String, address: String?, mapping: PortMapping) throws(RunnerError) {
            if let first = owners[port] {
                throw RunnerError(
                    .invalidInput, input: "service \(owner) port \(port)",
                    problem: first == owner
                        ? "is mapped twice by the same service" : "is also used by service \(first)",
                    fix: "give each service its own host ports (ports: [\"HOST:\(mapping.containerPort)\"])")
            }
            owners[port] = owner
            guard isFree(address, port) else {
                throw RunnerError(
                    .alreadyExists, input: "service \(owner) port \(port)",
                    problem: "is already in use on the host (service guests share the host's network)",
                    fix: "map the service to a free host port (ports: [\"FREE:\(mapping.containerPort)\"]), "
                        + "or stop what listens on \(port)")
            }
        }
        for (owner, ports) in services {
            var own: Set<UInt16> = []
            for port in ports {
                if port.udp {
                    guard !port.needsProxy else {
                        throw RunnerError(
                            .unsupported, input: "service \(owner) port \(port.hostPort)/udp",
                            problem: "a UDP port cannot be mapped to another host port on this runner",
                            fix: "use \(port.containerPort)/udp (the service's own port is the host's)")
                    }
                    continue
                }
                if own.insert(port.containerPort).inserted {
                    try claim(port.containerPort, owner, address: nil, mapping: port)
                }
                if port.needsProxy {
                    try claim(port.hostPort, owner, address: port.hostAddress, mapping: port)
                }
            }
        }
    }

    /// The proxy's `ListenStream=`: `PORT`, `ADDRESS:PORT` or `[ADDRESS]:PORT`.
    public var listenAddress: String {
        guard let address = hostAddress else { return String(hostPort) }
        return address.contains(":") ? "[\(address)]:\(hostPort)" : "\(address):\(hostPort)"
    }

    /// Parses one `ports:` entry. Ranges, and UDP mappings that would need a proxy, are refused.
    public static func parse(_ mapping: String) throws(RunnerError) -> PortMapping {
        func bad(_ problem: String, _ fix: String = "use CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER[/tcp]")
            -> RunnerError
        {
            RunnerError(.invalidInput, input: mapping, problem: problem, fix: fix)
        }
        var body = Substring(mapping)
        var udp = false
        if let slash = body.lastIndex(of: "/") {
            let proto = body[body.index(after: slash)...].lowercased()
            guard proto == "tcp" || proto == "udp" else { throw bad("has an unknown protocol \(proto)") }
            udp = proto == "udp"
            body = body[..<slash]
        }
        var address: String?
        if body.hasPrefix("["), let close = body.firstIndex(of: "]") {
            // [::1]:8080:80
            address = String(body[body.index(after: body.startIndex)..<close])
            body = body[body.index(after: close)...]
            guard body.hasPrefix(":") else { throw bad("is not a port mapping") }
            body = body.dropFirst()
        }
        var parts = body.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if address == nil, parts.count == 3 {
            address = parts.removeFirst()
        }
        guard (1...2).contains(parts.count) else { throw bad("is not a port mapping") }
        if parts.contains(where: { $0.contains("-") }) {
            throw bad("is a port range, which this runner does not map", "list each port on its own")
        }
        guard let container = UInt16(parts[parts.count - 1]), container > 0 else {
            throw bad("has no valid container port (1-65535)")
        }
        var host = container
        if parts.count == 2, !parts[0].isEmpty {
            guard let value = UInt16(parts[0]), value > 0 else { throw bad("has no valid host port (1-65535)") }
            host = value
        } else if parts.count == 2 {
            // `:80` (docker: a random host port): guests share the host network; use the same port.
            host = container
        }
        if let a = address, a.isEmpty || a == "0.0.0.0" || a == "::" {
            address = nil
        }
        if let a = address, !IPAddress.isLiteral(a) {
            throw bad("has a host address that is not an IP address", "use an IPv4 or IPv6 literal, e.g. 127.0.0.1")
        }
        let port = PortMapping(hostAddress: address, hostPort: host, containerPort: container, udp: udp)
        if udp && port.needsProxy {
            throw RunnerError(
                .unsupported, input: mapping,
                problem: "maps a UDP port to another host port, which this runner cannot do "
                    + "(guests share the host's network; only TCP ports are forwarded)",
                fix: "use \(container)/udp (the service's own port is the host's), or a TCP port")
        }
        return port
    }
}

/// IP address literals (`inet_pton`).
enum IPAddress {
    static func isLiteral(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

/// A docker health check (`--health-*`), with docker's defaults.
public struct HealthCheck: Sendable, Hashable {
    /// Run as `/bin/sh -c COMMAND` in the service's guest (docker's CMD-SHELL form).
    public var command: String
    public var interval: Double = 30
    public var timeout: Double = 30
    public var retries: Int = 3
    public var startPeriod: Double = 0

    public init(command: String) { self.command = command }

    /// The longest the check can take: the start period, then every retry with its interval.
    public var bound: Double { startPeriod + Double(retries + 1) * (interval + timeout) }
}

/// What this runner makes of a container's `options:` (docker create flags).
public struct CreateOptions: Sendable, Hashable {
    public var health: HealthCheck?
    /// `--no-healthcheck`.
    public var noHealthcheck = false
    /// `-e/--env NAME=VALUE`.
    public var environment: [String: String] = [:]
    /// Flags this runner does not apply (each with its value when it takes one).
    public var ignored: [String] = []
    /// `--cap-add X` the admin allowed (`CAP_X`; see `RUNNER_GUEST_CAP_ADD`).
    public var capabilities: [String] = []

    public init() {}

    /// docker flags without a value (so the next word is not taken as theirs).
    static let booleanFlags: Set<String> = [
        "--init", "--privileged", "--read-only", "--rm", "-d", "--detach", "-i", "--interactive", "-t", "--tty",
        "-P", "--publish-all", "--oom-kill-disable", "--no-healthcheck", "--sig-proxy", "--disable-content-trust",
        "-q", "--quiet", "--use-api-socket", "-it", "-ti", "-dit",
    ]

    /// Parses `options:` (shell words). Bad values of supported flags are errors naming `owner`.
    /// Flags that would weaken the guest's sandbox are refused: `--privileged`, `--security-opt`,
    /// `--device`, `--pid/--ipc/--uts/--userns/--cgroupns=host`, and `--cap-add` of a
    /// capability not in `allowedCapabilities` (`RUNNER_GUEST_CAP_ADD`, `CAP_X` names).
    public static func parse(_ text: String?, owner: String, allowedCapabilities: [String] = []) throws(RunnerError)
        -> CreateOptions
    {
        var options = CreateOptions()
        guard let text, !text.allSatisfy(\.isWhitespace) else { return options }
        let words: [String]
        do {
            words = try ShellWords.split(text)
        } catch {
            throw RunnerError(error.code, input: "\(owner) options: \(text)", problem: error.problem, fix: error.fix)
        }
        var health: HealthCheck?
        var healthSettings: [(String, String)] = []
        var index = 0
        while index < words.count {
            let word = words[index]
            index += 1
            var flag = word
            var value: String?
            if word.hasPrefix("--"), let eq = word.firstIndex(of: "=") {
                flag = String(word[..<eq])
                value = String(word[word.index(after: eq)...])
            } else if word.hasPrefix("-e"), word.count > 2, !word.hasPrefix("--") {
                flag = "-e"
                value = String(word.dropFirst(2))
            }
            guard flag.hasPrefix("-") else {
                options.ignored.append(word)
                continue
            }
            let takesValue = !booleanFlags.contains(flag)
            if takesValue, value == nil, index < words.count {
                value = words[index]
                index += 1
            }
            func required() throws(RunnerError) -> String {
                guard let value else {
                    throw RunnerError(
                        .invalidInput, input: "\(owner) options: \(flag)", problem: "has no value",
                        fix: "give a value, e.g. \(flag) VALUE")
                }
                return value
            }
            switch flag {
            case "--health-cmd":
                health = HealthCheck(command: try required())
            case "--health-interval", "--health-timeout", "--health-start-period", "--health-retries":
                healthSettings.append((flag, try required()))
            case "--no-healthcheck":
                options.noHealthcheck = true
            case "--privileged":
                throw RunnerError(
                    .permission, input: "\(owner) options: --privileged",
                    problem: "is refused on this runner: a privileged container would be host root",
                    fix: "remove --privileged; add single capabilities with --cap-add (the admin lists the ones "
                        + "jobs may add in RUNNER_GUEST_CAP_ADD)")
            case "--cap-add":
                let value = try required()
                for text in value.split(separator: ",").map(String.init) {
                    guard let name = LinuxCapability.canonicalName(text) else {
                        throw RunnerError(
                            .invalidInput, input: "\(owner) options: --cap-add \(text)",
                            problem: text.uppercased() == "ALL"
                                ? "is refused on this runner (it is --privileged in all but name)"
                                : "is not a Linux capability name",
                            fix:
                                "add single capabilities the admin allows (RUNNER_GUEST_CAP_ADD), e.g. --cap-add NET_ADMIN"
                        )
                    }
                    guard allowedCapabilities.contains(name) else {
                        throw RunnerError(
                            .permission, input: "\(owner) options: --cap-add \(text)",
                            problem: "is not allowed on this runner",
                            fix: "remove it from the job's options, or have the admin add \(name.dropFirst(4)) to "
                                + "RUNNER_GUEST_CAP_ADD in config.env")
                    }
                    if !options.capabilities.contains(name) { options.capabilities.append(name) }
                }
            case "--security-opt", "--device", "--device-cgroup-rule":
                throw RunnerError(
                    .permission, input: "\(owner) options: \(flag) \(value ?? "")",
                    problem: "is refused on this runner (it would weaken the guest's sandbox)",
                    fix: "remove \(flag) from the job's options")
            // `--network host` stays an ignored option: every guest shares the host's network
            // already (services answer on 127.0.0.1), so it asks for nothing more.
            case let namespace
            where ["--pid", "--ipc", "--uts", "--userns", "--cgroupns"].contains(namespace) && value == "host":
                throw RunnerError(
                    .permission, input: "\(owner) options: \(namespace)=host",
                    problem: "is refused on this runner (a job never shares the host's namespaces)",
                    fix: "remove \(namespace)=host from the job's options")
            case "-e", "--env":
                let assignment = try required()
                guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
                    options.ignored.append("\(flag) \(assignment) (only NAME=VALUE is supported)")
                    continue
                }
                options.environment[String(assignment[..<eq])] = String(assignment[assignment.index(after: eq)...])
            default:
                options.ignored.append(value.map { "\(flag) \($0)" } ?? flag)
            }
        }
        if var check = health {
            for (flag, value) in healthSettings {
                func invalid(_ what: String) -> RunnerError {
                    RunnerError(
                        .invalidInput, input: "\(owner) options: \(flag) \(value)", problem: "is not \(what)",
                        fix: "use a docker duration such as 5s, 1m30s or 500ms (retries: a whole number)")
                }
                if flag == "--health-retries" {
                    guard let retries = Int(value), retries >= 0 else { throw invalid("a number of retries") }
                    check.retries = retries
                    continue
                }
                guard let seconds = DockerDuration.seconds(value) else { throw invalid("a duration") }
                switch flag {
                case "--health-interval": check.interval = seconds
                case "--health-timeout": check.timeout = seconds
                default: check.startPeriod = seconds
                }
            }
            options.health = check
        } else {
            options.ignored += healthSettings.map { "\($0.0) \($0.1) (no --health-cmd)" }
        }
        if options.noHealthcheck { options.health = nil }
        return options
    }
}

/// Go durations as docker takes them: `30s`, `1m30s`, `500ms`, `1.5s`, `1h`; `0` alone.
public enum DockerDuration {
    public static func seconds(_ text: String) -> Double? {
        if text == "0" { return 0 }
        var total = 0.0
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        let units: [(String, Double)] = [
            ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600),
        ]
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            total += value * unit.1
            rest = rest.dropFirst(unit.0.count)
        }
        return total
    }
}

/// A service's `env:` as a systemd `system.conf.d` drop-in: the guest's manager gives it to every
/// unit it starts (`DefaultEnvironment=`), the way docker's `-e` reaches a container's process.
public enum ServiceEnvironment {
    /// The drop-in text, and the names that cannot be carried (not shell-style names, or a
    /// value with a NUL). Each assignment is double-quoted; `\`, `"` and control characters are
    /// C-escaped and `%` doubled (the manager expands specifiers in this setting).
    public static func dropIn(_ environment: [String: String]) -> (text: String, skipped: [String]) {
        var assignments: [String] = []
        var skipped: [String] = []
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) {
            guard GuestManager.isValidEnvironmentName(name), !value.contains("\0") else {
                skipped.append(name)
                continue
            }
            assignments.append("\"" + escape(name + "=" + value) + "\"")
        }
        var text = "# Generated by runner-agent for one service guest; removed with the guest.\n[Manager]\n"
        if !assignments.isEmpty {
            text += "DefaultEnvironment=" + assignments.joined(separator: " ") + "\n"
        }
        return (text, skipped)
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "%": out += "%%"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\x" + (hex.count == 1 ? "0" : "") + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
