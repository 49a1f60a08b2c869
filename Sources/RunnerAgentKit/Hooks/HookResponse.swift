import FoundationEssentials
import RunnerCore

/// What the hook writes to the runner's response file (`hooks-protocol.md` §5): the state the
/// runner hands back on the next call, whether the job guest is Alpine, and the `job` context
/// (the job guest and one entry per service, in the input's order).
///
/// Encoded as one compact JSON object with sorted keys and `/` unescaped (``encoded()``); a nil
/// field is left out. `context.container` is nil for a services-only job (the runner would write
/// into a job container that does not exist), and every service carries `ports`, `{}` when none
/// are mapped (the runner dereferences it).
public struct HookResponse: Codable, Sendable, Hashable {
    /// Replaces the state the runner stores (nil: the stored state stays).
    public var state: HookState?
    /// Whether the job guest runs Alpine (musl): the runner then picks its Alpine node. Required
    /// by the runner for `prepare_job` with a job container.
    public var isAlpine: Bool?
    /// The `job.container` and `job.services` contexts (`prepare_job` only).
    public var context: Context?

    public init(state: HookState? = nil, isAlpine: Bool? = nil, context: Context? = nil) {
        self.state = state
        self.isAlpine = isAlpine
        self.context = context
    }

    /// The `job` context the runner fills from the response.
    public struct Context: Codable, Sendable, Hashable {
        /// `job.container`; nil for a job without a container.
        public var container: Container?
        /// `job.services.<alias>`, matched to the input's services by index.
        public var services: [Service]

        public init(container: Container? = nil, services: [Service] = []) {
            self.container = container
            self.services = services
        }
    }

    /// `job.container`: the job guest.
    public struct Container: Codable, Sendable, Hashable {
        public var id: String
        public var network: String

        public init(id: String, network: String) {
            self.id = id
            self.network = network
        }
    }

    /// `job.services.<alias>`: one service guest.
    public struct Service: Codable, Sendable, Hashable {
        public var id: String
        public var network: String
        /// Container port → host port, as strings (never absent: `{}` when nothing is mapped).
        public var ports: [String: String]

        public init(id: String, network: String, ports: [String: String] = [:]) {
            self.id = id
            self.network = network
            self.ports = ports
        }
    }

    /// The response file's bytes: one compact JSON object, keys sorted, `/` unescaped, non-ASCII
    /// as UTF-8.
    public func encoded() throws(RunnerError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(self))
        } catch {
            throw RunnerError(.internal, input: "response", problem: "could not be encoded", underlying: error)
        }
    }
}
