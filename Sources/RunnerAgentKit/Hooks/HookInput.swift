import FoundationEssentials
import RunnerCore

/// The JSON the runner writes to the hook's stdin (`hooks-protocol.md` §3–4), decoded
/// leniently: unknown fields are ignored, nulls and missing fields take defaults, and
/// `prependPath` may be an array or the pre-2.293 single string.
public struct HookInput: Decodable, Sendable {
    public enum Command: String, Sendable {
        case prepareJob = "prepare_job"
        case cleanupJob = "cleanup_job"
        case runScriptStep = "run_script_step"
        case runContainerStep = "run_container_step"
    }

    /// The raw command string (checked by the hook, so an unknown one gets a clear error).
    public var command: String
    public var responseFile: String?
    public var args: Args
    public var state: HookState?

    /// The union of every command's args; each command reads its own fields.
    public struct Args: Decodable, Sendable {
        // prepare_job
        public var container: HookContainer?
        public var services: [HookContainer]
        // run_script_step / run_container_step
        public var entryPoint: String?
        public var entryPointArgs: [String]
        public var environmentVariables: [String: String]
        public var prependPath: [String]
        public var workingDirectory: String?
        public var image: String?
        public var dockerfile: String?

        enum CodingKeys: String, CodingKey {
            case container, services, entryPoint, entryPointArgs, environmentVariables, prependPath,
                workingDirectory, image, dockerfile
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            container = try? c.decodeIfPresent(HookContainer.self, forKey: .container)
            services =
                ((try? c.decodeIfPresent([HookContainer?].self, forKey: .services)) ?? nil)?.compactMap { $0 } ?? []
            entryPoint = try? c.decodeIfPresent(String.self, forKey: .entryPoint)
            entryPointArgs = lenientStrings(c, .entryPointArgs)
            environmentVariables = lenientMap(c, .environmentVariables)
            if let single = try? c.decodeIfPresent(String.self, forKey: .prependPath) {
                prependPath = single.isEmpty ? [] : [single]
            } else {
                prependPath = lenientStrings(c, .prependPath)
            }
            workingDirectory = try? c.decodeIfPresent(String.self, forKey: .workingDirectory)
            image = try? c.decodeIfPresent(String.self, forKey: .image)
            dockerfile = try? c.decodeIfPresent(String.self, forKey: .dockerfile)
        }

        public init() {
            services = []
            entryPointArgs = []
            environmentVariables = [:]
            prependPath = []
        }
    }

    enum CodingKeys: String, CodingKey { case command, responseFile, args, state }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        command = try c.decode(String.self, forKey: .command)
        responseFile = try? c.decodeIfPresent(String.self, forKey: .responseFile)
        args = (try? c.decodeIfPresent(Args.self, forKey: .args)) ?? Args()
        state = try? c.decodeIfPresent(HookState.self, forKey: .state)
    }

    /// Decodes stdin; a clear error for anything that is not a hook envelope. The runner sends
    /// one line; like the hooklib reader we fall back to the last line when the whole is not JSON.
    public static func decode(_ bytes: [UInt8]) throws(RunnerError) -> HookInput {
        let lines = bytes.split(separator: UInt8(ascii: "\n")).filter { !$0.allSatisfy { $0 == 13 || $0 == 32 } }
        guard let last = lines.last else {
            throw RunnerError(
                .invalidInput, input: "stdin", problem: "no hook input (expected one line of JSON)",
                fix: "run this through the runner's ACTIONS_RUNNER_CONTAINER_HOOKS, which writes the JSON to stdin")
        }
        if let input = try? JSONDecoder().decode(HookInput.self, from: Data(bytes)) { return input }
        if let input = try? JSONDecoder().decode(HookInput.self, from: Data(last)) { return input }
        throw RunnerError(
            .invalidInput, input: "stdin", problem: "the hook input is not a valid hook JSON envelope",
            fix: "expected {\"command\":…,\"responseFile\":…,\"args\":…,\"state\":…} as the runner sends it")
    }
}

/// A job or service container as the runner describes it (`HookContainer`).
public struct HookContainer: Decodable, Sendable {
    public var image: String?
    public var entryPoint: String?
    public var entryPointArgs: [String]
    public var workingDirectory: String?
    public var createOptions: String?
    public var environmentVariables: [String: String]
    public var portMappings: [String]
    public var systemMountVolumes: [MountVolume]
    public var userMountVolumes: [MountVolume]
    /// The workflow's registry credentials (`container.credentials`), when any.
    public var registry: JobRegistryCredentials?
    /// The service's name in the workflow (`redis`), when the runner sends it (it does not yet).
    public var contextName: String?

    enum CodingKeys: String, CodingKey {
        case contextName
        case image, entryPoint, entryPointArgs, workingDirectory, createOptions, environmentVariables,
            portMappings, systemMountVolumes, userMountVolumes, registry
    }

    struct Registry: Decodable {
        var username: String?
        var password: String?
        var serverUrl: String?
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        image = try? c.decodeIfPresent(String.self, forKey: .image)
        entryPoint = try? c.decodeIfPresent(String.self, forKey: .entryPoint)
        entryPointArgs = lenientStrings(c, .entryPointArgs)
        workingDirectory = try? c.decodeIfPresent(String.self, forKey: .workingDirectory)
        createOptions = try? c.decodeIfPresent(String.self, forKey: .createOptions)
        environmentVariables = lenientMap(c, .environmentVariables)
        if let map = try? c.decodeIfPresent([String: String].self, forKey: .portMappings) {
            // The docs' (wrong) map form {"80":"801"}: host port → container port.
            portMappings = map.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
        } else {
            portMappings = lenientStrings(c, .portMappings)
        }
        systemMountVolumes = lenientArray(c, .systemMountVolumes)
        userMountVolumes = lenientArray(c, .userMountVolumes)
        if let given = (try? c.decodeIfPresent(Registry.self, forKey: .registry)) ?? nil,
            given.username != nil || given.password != nil
        {
            registry = JobRegistryCredentials(
                username: given.username, password: given.password.map(Secret.init), serverUrl: given.serverUrl)
        }
        contextName = try? c.decodeIfPresent(String.self, forKey: .contextName)
    }
}

/// A mount (`MountVolume`): source may be a host path, a named volume, or absent.
public struct MountVolume: Decodable, Sendable, Hashable {
    public var sourceVolumePath: String?
    public var targetVolumePath: String?
    public var readOnly: Bool

    enum CodingKeys: String, CodingKey { case sourceVolumePath, targetVolumePath, readOnly }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sourceVolumePath = try? c.decodeIfPresent(String.self, forKey: .sourceVolumePath)
        targetVolumePath = try? c.decodeIfPresent(String.self, forKey: .targetVolumePath)
        readOnly = ((try? c.decodeIfPresent(Bool.self, forKey: .readOnly)) ?? nil) ?? false
    }

    public init(source: String?, target: String, readOnly: Bool = false) {
        sourceVolumePath = source
        targetVolumePath = target
        self.readOnly = readOnly
    }
}

/// The state this hook keeps between calls (the runner stores it and sends it back). All
/// values are strings, as the protocol asks (§2).
public struct HookState: Codable, Sendable, Hashable {
    /// The job guest, when the job has a container.
    public var guest: String?
    /// The service guests, in input order.
    public var services: [String]
    /// The container-level environment (job container env, GITHUB_ACTIONS, CI).
    public var environment: [String: String]
    /// The job guest's step relay socket: `runner-hook` sends the job's steps there itself.
    public var relay: String?

    public init(
        guest: String? = nil, services: [String] = [], environment: [String: String] = [:], relay: String? = nil
    ) {
        self.guest = guest
        self.services = services
        self.environment = environment
        self.relay = relay
    }

    enum CodingKeys: String, CodingKey { case guest, services, environment, relay }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guest = try? c.decodeIfPresent(String.self, forKey: .guest)
        services = lenientStrings(c, .services)
        environment = lenientMap(c, .environment)
        relay = try? c.decodeIfPresent(String.self, forKey: .relay)
    }
}

private func lenientStrings<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) -> [String] {
    ((try? c.decodeIfPresent([String?].self, forKey: key)) ?? nil)?.compactMap { $0 } ?? []
}

private func lenientMap<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) -> [String: String] {
    ((try? c.decodeIfPresent([String: String?].self, forKey: key)) ?? nil)?.compactMapValues { $0 } ?? [:]
}

private func lenientArray<K: CodingKey, T: Decodable>(_ c: KeyedDecodingContainer<K>, _ key: K) -> [T] {
    ((try? c.decodeIfPresent([T?].self, forKey: key)) ?? nil)?.compactMap { $0 } ?? []
}
