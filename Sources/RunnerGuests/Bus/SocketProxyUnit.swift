import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A socket-activated TCP forwarder in a guest, started over its systemd: `NAME.socket` listens
/// on ``listen`` (guests share the host's network) and starts `NAME.service` (an auxiliary unit
/// of the same `StartTransientUnit` call, as `systemd-run --socket-property=` makes it), which
/// runs the guest's own `systemd-socket-proxyd` inside the guest, sandboxed like a step.
package struct SocketProxyUnit: Sendable, Hashable {
    /// `runner-port-PORT`.
    var name: String
    /// `ListenStream=`: `PORT`, `ADDRESS:PORT` or `[ADDRESS]:PORT`.
    var listen: String
    /// Where connections go: `127.0.0.1:PORT`.
    var target: String
    /// `systemd-socket-proxyd` in the guest.
    var proxy: String = "/usr/lib/systemd/systemd-socket-proxyd"
    var sandbox = UnitSandbox()

    /// The body of `StartTransientUnit(ssa(sv)a(sa(sv)))` for the socket, with the service as
    /// its auxiliary unit.
    func startTransientUnitBody() -> [UInt8] {
        var body = DBusWriter()
        body.string(name + ".socket")
        body.string("fail")
        body.array(alignment: 8) { properties in
            properties.property("Description", "s") { $0.string("runner port \(listen) -> \(target)") }
            properties.property("Listen", "a(ss)") { value in
                value.array(alignment: 8) { list in
                    list.structure { entry in
                        entry.string("Stream")
                        entry.string(listen)
                    }
                }
            }
            if listen.allSatisfy(\.isNumber) {
                properties.property("BindIPv6Only", "s") { $0.string("both") }
            }
            properties.property("CollectMode", "s") { $0.string("inactive-or-failed") }
        }
        body.array(alignment: 8) { units in
            units.structure { unit in
                unit.string(name + ".service")
                unit.array(alignment: 8) { properties in
                    properties.property("Description", "s") { $0.string("runner port \(listen) -> \(target)") }
                    properties.property("ExecStart", "a(sasb)") { value in
                        value.array(alignment: 8) { commands in
                            commands.structure { command in
                                command.string(proxy)
                                command.array(alignment: 4) { args in [proxy, target].forEach { args.string($0) } }
                                command.bool(false)
                            }
                        }
                    }
                    properties.property("CollectMode", "s") { $0.string("inactive-or-failed") }
                    sandbox.append(to: &properties)
                }
            }
        }
        return body.bytes
    }

    /// Starts the socket and waits (bounded) for its start job: an error when it did not listen.
    func start(bus: SystemdBus, timeout: Double = 30) throws(RunnerError) {
        // Job results by job path: the signal may come before the call's reply.
        var removed: [String: String] = [:]
        let watch = { (message: SystemdBus.Message) in
            guard message.member == "JobRemoved" else { return }
            var reader = DBusReader(message.body)
            _ = try? reader.uint32()
            guard let path = try? reader.string(), (try? reader.string()) != nil else { return }
            removed[path] = try? reader.string()
        }
        if !bus.subscribed {
            _ = try bus.call(
                path: StepUnit.manager, interface: StepUnit.managerInterface, member: "Subscribe", onSignal: watch)
            bus.subscribed = true
        }
        let reply = try bus.call(
            path: StepUnit.manager, interface: StepUnit.managerInterface, member: "StartTransientUnit",
            signature: "ssa(sv)a(sa(sv))", body: startTransientUnitBody(), onSignal: watch)
        var reader = DBusReader(reply.body)
        let job = (try? reader.string()) ?? ""
        let deadline = MonotonicClock.now() + timeout
        while removed[job] == nil {
            guard MonotonicClock.now() < deadline else {
                throw RunnerError(
                    .timeout, input: name + ".socket", problem: "systemd did not start it within \(Int(timeout)) s")
            }
            if bus.poll(timeout: 1).bus { watch(try bus.receive()) }
        }
        let result = removed[job]
        guard result == "done" else {
            throw RunnerError(
                .commandFailed, input: name + ".socket",
                problem: "systemd could not listen on \(listen) (the start job ended \(result ?? "?"))",
                fix: "map the service to a free host port")
        }
    }
}
