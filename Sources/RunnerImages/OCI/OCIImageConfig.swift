import FoundationEssentials
import RunnerCore

/// An OCI image configuration (`application/vnd.oci.image.config.v1+json`, or Docker's
/// `container.v1+json`, which has the same fields): what a registry image asks of the process
/// that runs it. Unknown fields are ignored; every field may be missing.
///
/// The guests apply it as docker does: ``Config-swift.struct/env`` under the job's own
/// environment, ``Config-swift.struct/workingDir`` when a step names none,
/// ``Config-swift.struct/user`` for steps and services, and `Entrypoint` + `Cmd` as a service's
/// main process.
public struct OCIImageConfig: Codable, Sendable, Hashable {
    public var architecture: String?
    public var os: String?
    public var config: Config?

    /// The `config` section (the runtime defaults of the image).
    public struct Config: Codable, Sendable, Hashable {
        /// `NAME=VALUE` entries, in order (a later one wins).
        public var env: [String]?
        public var entrypoint: [String]?
        public var cmd: [String]?
        public var workingDir: String?
        /// `name`, `uid`, `name:group`, `uid:gid` (resolved in the image's `/etc/passwd` and
        /// `/etc/group`).
        public var user: String?
        /// `"80/tcp": {}` entries.
        public var exposedPorts: [String: Empty]?

        /// The empty object the OCI format uses as a set member.
        public struct Empty: Codable, Sendable, Hashable {
            public init() {}
        }

        enum CodingKeys: String, CodingKey {
            case env = "Env"
            case entrypoint = "Entrypoint"
            case cmd = "Cmd"
            case workingDir = "WorkingDir"
            case user = "User"
            case exposedPorts = "ExposedPorts"
        }

        public init(
            env: [String]? = nil, entrypoint: [String]? = nil, cmd: [String]? = nil, workingDir: String? = nil,
            user: String? = nil, exposedPorts: [String: Empty]? = nil
        ) {
            self.env = env
            self.entrypoint = entrypoint
            self.cmd = cmd
            self.workingDir = workingDir
            self.user = user
            self.exposedPorts = exposedPorts
        }
    }

    public init(architecture: String? = nil, os: String? = nil, config: Config? = nil) {
        self.architecture = architecture
        self.os = os
        self.config = config
    }

    /// The largest configuration accepted (real ones are a few KiB).
    public static let sizeLimit = 4 << 20

    /// Decodes a configuration blob; anything that is not one is refused, naming `input`.
    public static func decode(_ bytes: [UInt8], input: String) throws(RunnerError) -> OCIImageConfig {
        guard bytes.count <= sizeLimit else {
            throw RunnerError(.unsafeInput, input: input, problem: "is larger than \(sizeLimit) bytes")
        }
        do {
            return try JSONDecoder().decode(OCIImageConfig.self, from: Data(bytes))
        } catch {
            throw RunnerError(
                .invalidInput, input: input, problem: "is not an OCI image configuration",
                fix: "pull the image again", underlying: error)
        }
    }

    /// ``Config-swift.struct/env`` as a dictionary (later entries win; an entry without `=` sets
    /// an empty value, as docker does).
    public var environment: [String: String] {
        var result: [String: String] = [:]
        for entry in config?.env ?? [] {
            guard let equals = entry.firstIndex(of: "=") else {
                if !entry.isEmpty { result[entry] = "" }
                continue
            }
            let name = String(entry[..<equals])
            guard !name.isEmpty else { continue }
            result[name] = String(entry[entry.index(after: equals)...])
        }
        return result
    }

    /// The main process docker starts: `Entrypoint` + `Cmd`, where a given `entrypoint`
    /// replaces the image's (and drops its `Cmd`, as `docker run --entrypoint` does) and given
    /// `arguments` replace `Cmd`. Empty when there is nothing to run.
    public func mainProcess(entrypoint: [String]? = nil, arguments: [String]? = nil) -> [String] {
        let head = entrypoint ?? config?.entrypoint ?? []
        let tail = arguments ?? (entrypoint == nil ? config?.cmd ?? [] : [])
        return head + tail
    }

    /// The TCP ports the image declares (`ExposedPorts`), sorted.
    public var exposedTCPPorts: [Int] {
        (config?.exposedPorts ?? [:]).keys.compactMap { key -> Int? in
            let parts = key.split(separator: "/")
            guard let port = parts.first.flatMap({ Int($0) }), parts.count == 1 || parts[1] == "tcp" else {
                return nil
            }
            return port
        }.sorted()
    }
}
