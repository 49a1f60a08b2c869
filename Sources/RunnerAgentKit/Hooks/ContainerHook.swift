import FoundationEssentials
import Logging
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// What the hook needs from guests: the in-process ``GuestManager`` when it runs as root, the
/// privileged helper through sudo otherwise.
public protocol GuestOperations: Sendable {
    func start(_ request: GuestStartRequest) async throws(RunnerError) -> GuestInfo
    func exec(_ name: String, command: [String], environment: [String: String], workingDirectory: String?)
        async throws(RunnerError) -> ExitStatus
    func stop(_ name: String) async throws(RunnerError)
    /// Removes stale guests and, with `owner`, every guest of that job.
    func sweep(owner: Int32?) async
}

extension GuestManager: GuestOperations {
    public func sweep(owner: Int32?) async { await gc(all: false, owner: owner) }
}

/// The container hook: one runner call (`prepare_job`, `run_script_step`, `cleanup_job`,
/// `run_container_step`) in, a response file and an exit code out.
public struct ContainerHook: Sendable {
    public var settings: HookSettings
    public var policy: GuestPolicy
    public var guests: any GuestOperations
    public var logger: Logger
    /// The job's owner (the runner's worker process, our parent): guests outliving it are swept.
    public var ownerPID: Int32

    public init(
        settings: HookSettings, policy: GuestPolicy, guests: any GuestOperations, logger: Logger, ownerPID: Int32
    ) {
        self.settings = settings
        self.policy = policy
        self.guests = guests
        self.logger = logger
        self.ownerPID = ownerPID
    }

    /// Handles one call and returns the exit code; errors are printed as `::error::` lines.
    public func run(stdin: [UInt8]) async -> Int32 {
        do throws(RunnerError) {
            let input = try HookInput.decode(stdin)
            guard let command = HookInput.Command(rawValue: input.command) else {
                throw RunnerError(
                    .unsupported, input: input.command, problem: "is not a container hook command",
                    fix: "expected prepare_job, run_script_step, run_container_step or cleanup_job")
            }
            switch command {
            case .prepareJob:
                try await prepareJob(input)
                return 0
            case .runScriptStep:
                return try await runScriptStep(input)
            case .cleanupJob:
                await cleanupJob(input)
                return 0
            case .runContainerStep:
                throw RunnerError(
                    .unsupported, input: "run_container_step",
                    problem: "Docker container actions are not supported by this runner yet",
                    fix: "use a run: step or a JavaScript action in the job container")
            }
        } catch {
            Self.reportError(error)
            return 1
        }
    }

    /// Prints `::error::` (one line, workflow-command escaped) to stdout and the full text to stderr.
    static func reportError(_ error: RunnerError) {
        let text = "\(error)"
        let escaped = text.replacing("%", with: "%25").replacing("\r", with: "%0D").replacing("\n", with: "%0A")
        StandardOutput.write("::error::\(escaped)\n")
        RunnerCore.StandardError.write("runner-agent hook: error: \(text)\n")
    }

    // MARK: prepare_job

    func prepareJob(_ input: HookInput) async throws(RunnerError) {
        guard let responseFile = input.responseFile, responseFile.hasPrefix("/") else {
            throw RunnerError(
                .invalidInput, input: "responseFile", problem: "is missing or not an absolute path",
                fix: "the runner always sends <work>/_temp/_runner_hook_responses/<guid>.json")
        }
        await guests.sweep(owner: nil)
        var state = HookState()
        do throws(RunnerError) {
            var serviceContexts: [[String: Any]] = []
            var aliases: [String] = []
            for service in input.args.services {
                let image = try resolveImage(service.image)
                let binds = try self.binds(service.userMountVolumes)
                let info = try await guests.start(GuestStartRequest(image: image, binds: binds, ownerPID: ownerPID))
                state.services.append(info.name)
                let ports = try Self.ports(service.portMappings)
                try await waitForPorts(ports.map(\.container), service: service.image ?? image)
                var portMap: [String: String] = [:]
                for port in ports { portMap[String(port.container)] = String(port.container) }
                serviceContexts.append(["id": info.name, "network": "host", "ports": portMap])
                let alias = Self.serviceAlias(service.image ?? image)
                if !alias.isEmpty, !aliases.contains(alias) { aliases.append(alias) }
            }
            var response: [String: Any] = [:]
            var context: [String: Any] = ["services": serviceContexts]
            if let container = input.args.container {
                let image = try resolveImage(container.image)
                let binds = try self.binds(container.systemMountVolumes + container.userMountVolumes)
                var environment = container.environmentVariables
                environment["GITHUB_ACTIONS"] = "true"
                if environment["CI"] == nil { environment["CI"] = "true" }
                state.environment = environment
                let info = try await guests.start(
                    GuestStartRequest(image: image, binds: binds, hostAliases: aliases, ownerPID: ownerPID))
                state.guest = info.name
                response["isAlpine"] = info.isAlpine
                context["container"] = ["id": info.name, "network": "host"]
            } else {
                response["isAlpine"] = false
            }
            var stateObject: [String: Any] = ["services": state.services, "environment": state.environment]
            if let guest = state.guest { stateObject["guest"] = guest }
            response["state"] = stateObject
            response["context"] = context
            try writeResponse(response, to: responseFile)
        } catch {
            // Nothing half-prepared stays behind.
            for name in [state.guest].compactMap({ $0 }) + state.services {
                try? await guests.stop(name)
            }
            throw error
        }
    }

    /// Finds the local image for a workflow image reference (`name`, `name:tag`, a registry path,
    /// or an alias from `RUNNER_IMAGE_ALIASES`).
    func resolveImage(_ reference: String?) throws(RunnerError) -> String {
        let available = policy.availableImages()
        var ref = reference ?? ""
        if ref.hasPrefix("docker://") { ref = String(ref.dropFirst(9)) }
        let withoutDigest = ref.split(separator: "@").first.map(String.init) ?? ref
        let lastComponent = withoutDigest.split(separator: "/").last.map(String.init) ?? withoutDigest
        let baseName = lastComponent.split(separator: ":").first.map(String.init) ?? lastComponent
        for key in [ref, withoutDigest, lastComponent, baseName] where !key.isEmpty {
            if let alias = settings.imageAliases[key] { return alias }
        }
        if available.contains(baseName) { return baseName }
        throw RunnerError(
            .notFound, input: ref.isEmpty ? "(no image)" : ref,
            problem: "image is not available on this runner (available: "
                + (available.isEmpty ? "none" : available.joined(separator: ", ")) + ")",
            fix: "use one of the available images, or ask the administrator to add it or an alias "
                + "(RUNNER_IMAGES / RUNNER_IMAGE_ALIASES in \(policy.layout.configFile))")
    }

    /// The guest binds for the runner's mounts: docker.sock only when configured, named volumes
    /// under the work directory, missing sources inside the allowed roots created.
    func binds(_ mounts: [MountVolume]) throws(RunnerError) -> [GuestBind] {
        var binds: [GuestBind] = []
        for mount in mounts {
            guard let target = mount.targetVolumePath, !target.isEmpty else { continue }
            guard var source = mount.sourceVolumePath, !source.isEmpty else {
                binds.append(GuestBind(source: nil, target: target, readOnly: mount.readOnly))
                continue
            }
            if source == "/var/run/docker.sock" || source == "/run/docker.sock" {
                let host = policy.layout.path(source)
                guard settings.allowDockerSock, FilePaths.exists(host) else {
                    logger.debug("not binding the docker socket", metadata: ["target": "\(target)"])
                    continue
                }
                binds.append(GuestBind(source: host, target: target, readOnly: mount.readOnly))
                continue
            }
            if !source.hasPrefix("/") {
                guard source.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }),
                    !source.hasPrefix(".")
                else {
                    throw RunnerError(
                        .invalidInput, input: source, problem: "is not a valid volume name",
                        fix: "use letters, digits, ., _ and -")
                }
                source = policy.workDirectory + "/_runner_volumes/" + source
            }
            if !FilePaths.exists(source), isInsideAllowedRoot(source) {
                try FilePaths.createDirectory(source)
            }
            binds.append(GuestBind(source: source, target: target, readOnly: mount.readOnly))
        }
        return binds
    }

    private func isInsideAllowedRoot(_ path: String) -> Bool {
        let parts = path.split(separator: "/")
        guard !parts.contains(".."), !parts.contains(".") else { return false }
        return policy.allowedMountRoots.contains { root in path == root || path.hasPrefix(root + "/") }
    }

    /// A mapped port: the container side (what listens in the guest) and the requested host side.
    struct Port: Equatable {
        var container: UInt16
        var host: UInt16?
        var tcp: Bool
    }

    /// Parses `8080:80`, `80`, `6379/tcp`, `127.0.0.1:8080:80`.
    static func ports(_ mappings: [String]) throws(RunnerError) -> [Port] {
        try mappings.map { mapping throws(RunnerError) in
            let protoSplit = mapping.split(separator: "/")
            let tcp = protoSplit.count < 2 || protoSplit[1].lowercased() == "tcp"
            let parts = (protoSplit.first ?? "").split(separator: ":")
            guard let last = parts.last, let container = UInt16(last), container > 0 else {
                throw RunnerError(
                    .invalidInput, input: mapping, problem: "is not a port mapping",
                    fix: "use CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER")
            }
            let host = parts.count >= 2 ? UInt16(parts[parts.count - 2]) : nil
            return Port(container: container, host: host, tcp: tcp)
        }
    }

    /// The host name a job reaches a service by: the image's base name (`redis:7` → `redis`).
    static func serviceAlias(_ image: String) -> String {
        var ref = image
        if ref.hasPrefix("docker://") { ref = String(ref.dropFirst(9)) }
        let path = ref.split(separator: "@").first.map(String.init) ?? ref
        let last = path.split(separator: "/").last.map(String.init) ?? path
        let base = (last.split(separator: ":").first.map(String.init) ?? last).lowercased()
        let mapped = String(base.map { $0 == "_" || $0 == "." ? "-" : $0 })
        guard mapped.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) else { return "" }
        return String(mapped.prefix(63))
    }

    func waitForPorts(_ ports: [UInt16], service: String) async throws(RunnerError) {
        let deadline = Posix.now() + settings.serviceReadyTimeout
        for port in ports {
            while !Posix.tcpAccepts(port: port) {
                if Posix.now() > deadline {
                    throw RunnerError(
                        .timeout, input: service,
                        problem: "service did not accept connections on port \(port) within "
                            + "\(Int(settings.serviceReadyTimeout)) s",
                        fix: "check that the image starts a service listening on that port at boot")
                }
                Posix.sleep(0.02)
            }
        }
    }

    func writeResponse(_ object: [String: Any], to path: String) throws(RunnerError) {
        try AtomicFile.write(Array(JSONText.encode(object).utf8), to: path, mode: 0o644, createDirectories: false)
    }

    // MARK: run_script_step

    func runScriptStep(_ input: HookInput) async throws(RunnerError) -> Int32 {
        guard let state = input.state, let guest = state.guest else {
            throw RunnerError(
                .invalidInput, input: "state",
                problem: "run_script_step has no job guest in its state (prepare_job did not run or failed)",
                fix: "add a container: to the job, or check the \"Initialize containers\" step")
        }
        guard let entryPoint = input.args.entryPoint, !entryPoint.isEmpty else {
            throw RunnerError(.invalidInput, input: "args.entryPoint", problem: "is missing")
        }
        var environment = state.environment
        for (key, value) in input.args.environmentVariables { environment[key] = value }
        let basePath = input.args.environmentVariables["PATH"] ?? state.environment["PATH"] ?? HookDefaults.path
        environment["PATH"] =
            input.args.prependPath.isEmpty ? basePath : (input.args.prependPath + [basePath]).joined(separator: ":")
        let status = try await guests.exec(
            guest, command: [entryPoint] + input.args.entryPointArgs, environment: environment,
            workingDirectory: input.args.workingDirectory)
        return status.shellCode
    }

    // MARK: cleanup_job

    func cleanupJob(_ input: HookInput) async {
        if let state = input.state {
            for name in [state.guest].compactMap({ $0 }) + state.services {
                do {
                    try await guests.stop(name)
                } catch {
                    logger.warning("could not stop guest", metadata: ["guest": "\(name)", "error": "\(error)"])
                }
            }
        } else {
            // prepare_job failed or was killed before it saved a state: remove every guest of
            // this job (same owner) and whatever else is stale.
            await guests.sweep(owner: ownerPID)
        }
    }
}

/// A small JSON writer for the response (strings, bools, arrays, objects), keys sorted.
enum JSONText {
    static func encode(_ value: Any) -> String {
        switch value {
        case let string as String: return quote(string)
        case let bool as Bool: return bool ? "true" : "false"
        case let int as Int: return String(int)
        case let array as [Any]: return "[" + array.map(encode).joined(separator: ",") + "]"
        case let object as [String: Any]:
            return "{" + object.keys.sorted().map { quote($0) + ":" + encode(object[$0]!) }.joined(separator: ",") + "}"
        default: return "null"
        }
    }

    static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
