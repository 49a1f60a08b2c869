import RunnerCore
import RunnerGuests

#if canImport(Glibc)
    import Glibc
#endif

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
    /// `-m/--memory` and `--cpus`: what the container asks for (the guest gets the lower of this
    /// and the administrator's `RUNNER_JOB_MEMORY_MAX`/`RUNNER_JOB_CPUS`).
    public var limits = GuestLimits()
    /// `-u/--user USER[:GROUP]` (a name or an id): who the steps (or a service's main process)
    /// run as in an image without systemd, instead of the image's `USER`.
    public var user: String?

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
                    let name = try LinuxCapability.checkAdded(
                        text, allowed: allowedCapabilities, input: "\(owner) options: --cap-add \(text)",
                        configFile: "config.env")
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
            case "-m", "--memory":
                let text = try required()
                guard let bytes = RunnerConfig.byteSize(text) else {
                    throw RunnerError(
                        .invalidInput, input: "\(owner) options: \(flag) \(text)", problem: "is not a memory size",
                        fix: "use a size such as 512m or 2g")
                }
                options.limits.memoryMax = bytes
            case "--cpus":
                let text = try required()
                guard let cpus = Double(text), cpus > 0, cpus <= 4096 else {
                    throw RunnerError(
                        .invalidInput, input: "\(owner) options: --cpus \(text)", problem: "is not a number of CPUs",
                        fix: "use a positive number such as 1.5")
                }
                options.limits.cpus = cpus
            case "-u", "--user":
                let text = try required()
                guard !text.isEmpty, text.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "\0" }) else {
                    throw RunnerError(
                        .invalidInput, input: "\(owner) options: \(flag) \(text)", problem: "is not a user",
                        fix: "use a name or id, optionally with a group: --user root, --user 1000:1000")
                }
                options.user = text
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
