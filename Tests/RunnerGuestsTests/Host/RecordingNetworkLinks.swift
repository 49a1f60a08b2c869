import RunnerCore
import Synchronization

@testable import RunnerGuests

/// ``NetworkLinks`` that changes nothing: it answers with the links it was given and records
/// every call, for the job network's decisions (which bridges go, which /24 is taken).
final class RecordingNetworkLinks: NetworkLinks {
    private let state: Mutex<(links: [HostLink], calls: [String], generation: UInt32?)>

    init(_ links: [HostLink] = [], generation: UInt32? = nil) {
        state = Mutex((links, [], generation))
    }

    /// What ``rulesetGeneration()`` answers (not recorded as a call).
    var generation: UInt32? {
        get { state.withLock { $0.generation } }
        set { state.withLock { $0.generation = newValue } }
    }

    func rulesetGeneration() async -> UInt32? { state.withLock { $0.generation } }

    /// Every call so far, in order: `links`, `add BRIDGE GATEWAY/PREFIX`, `delete NAME`,
    /// `guest LEADER DEVICE ADDRESS/PREFIX via GATEWAY` (addresses as numbers).
    var calls: [String] { state.withLock { $0.calls } }

    func hostLinks() async throws(RunnerError) -> [HostLink] {
        state.withLock {
            $0.calls.append("links")
            return $0.links
        }
    }

    func addBridge(_ name: String, gateway: IPv4Network) async throws(RunnerError) {
        state.withLock {
            $0.calls.append("add \(name) \(gateway.address)/\(gateway.prefix)")
            $0.links.append(HostLink(name: name, kind: "bridge", networks: [gateway]))
        }
    }

    @discardableResult
    func deleteLink(_ name: String) async -> Bool {
        state.withLock {
            $0.calls.append("delete \(name)")
            let before = $0.links.count
            $0.links.removeAll { $0.name == name }
            return $0.links.count < before
        }
    }

    func configureGuest(leader: Int32, device: String, address: IPv4Network, gateway: UInt32)
        async throws(RunnerError)
    {
        state.withLock {
            $0.calls.append("guest \(leader) \(device) \(address.address)/\(address.prefix) via \(gateway)")
        }
    }
}
