import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// A step as a transient service in its guest, started straight over the guest manager's
/// private D-Bus socket (see ``GuestBus``): the unit `systemd-run --wait --pipe` would create,
/// sandboxed (``UnitSandbox``), without running any program of the guest's on the host.
package struct StepUnit: Sendable, Hashable {
    var unit: String
    /// The absolute program in the guest and its whole argv (argv[0] included).
    var argv: [String]
    /// `NAME=VALUE`, names systemd accepts only.
    var environment: [String]
    var workingDirectory: String?
    /// `RuntimeMaxSec=`, for health checks.
    var runtimeMax: Double?
    /// The capability bounding set and system-call filter (see ``UnitSandbox``).
    var sandbox = UnitSandbox()

    /// The body of `StartTransientUnit(ssa(sv)a(sa(sv)))`, descriptors 0, 1, 2 standing for the
    /// step's stdin, stdout and stderr.
    func startTransientUnitBody() -> [UInt8] {
        var body = DBusWriter()
        body.string(unit)
        body.string("fail")
        body.array(alignment: 8) { properties in
            properties.property("Description", "s") { $0.string("runner step") }
            properties.property("ExecStart", "a(sasb)") { value in
                value.array(alignment: 8) { commands in
                    // (path, argv, ignore failure)
                    commands.structure { command in
                        command.string(argv[0])
                        command.array(alignment: 4) { args in argv.forEach { args.string($0) } }
                        command.bool(false)
                    }
                }
            }
            properties.property("Environment", "as") { value in
                value.array(alignment: 4) { list in environment.forEach { list.string($0) } }
            }
            if let workingDirectory {
                properties.property("WorkingDirectory", "s") { $0.string(workingDirectory) }
            }
            properties.property("StandardInputFileDescriptor", "h") { $0.uint32(0) }
            properties.property("StandardOutputFileDescriptor", "h") { $0.uint32(1) }
            properties.property("StandardErrorFileDescriptor", "h") { $0.uint32(2) }
            properties.property("TimeoutStopUSec", "t") { $0.uint64(5_000_000) }
            properties.property("SendSIGHUP", "b") { $0.bool(true) }
            properties.property("RemainAfterExit", "b") { $0.bool(true) }
            if let runtimeMax {
                properties.property("RuntimeMaxUSec", "t") { $0.uint64(UInt64((runtimeMax * 1_000_000).rounded(.up))) }
            }
            sandbox.append(to: &properties)
        }
        body.array(alignment: 8) { _ in }
        return body.bytes
    }

    static let manager = "/org/freedesktop/systemd1"
    static let managerInterface = "org.freedesktop.systemd1.Manager"

    /// The error code of a step systemd did not take (the bus failed before the unit was
    /// created): the caller may try once more on a fresh connection.
    static let notStarted = RunnerError.Code("step-not-started")

    /// Runs the step with these descriptors and waits for it. A byte on `stopRequests` (the
    /// signal the caller got) stops the unit; a second one, or 0xff, kills it; EOF stops it.
    ///
    /// The unit has `RemainAfterExit=yes` and the default `CollectMode=inactive`: it stays loaded
    /// after its process ends, so its exit status can be read without a race (systemd-run holds
    /// it with `AddRef` instead, which needs a bus name; a peer on the private socket has none).
    /// We then stop it (ending whatever the step left running) and reset it when it failed, and
    /// systemd unloads it.
    func run(
        bus: SystemdBus, stdin: Int32, stdout: Int32, stderr: Int32, stopRequests: Int32?
    ) throws(RunnerError) -> ExitStatus {
        let path = SystemdBus.unitPath(unit)
        var changed = false
        // The start job's result ("done", "failed", "canceled", …) once it is over.
        var jobResult: String?
        let watch = { (message: SystemdBus.Message) in
            if message.member == "JobRemoved" {
                var reader = DBusReader(message.body)
                _ = try? reader.uint32()
                _ = try? reader.string()
                if (try? reader.string()) == unit {
                    jobResult = try? reader.string()
                    changed = true
                }
            } else if message.path == path {
                changed = true
            }
        }
        do throws(RunnerError) {
            if !bus.subscribed {
                _ = try bus.call(
                    path: Self.manager, interface: Self.managerInterface, member: "Subscribe", onSignal: watch)
                bus.subscribed = true
            }
            _ = try bus.call(
                path: Self.manager, interface: Self.managerInterface, member: "StartTransientUnit",
                signature: "ssa(sv)a(sa(sv))", body: startTransientUnitBody(), descriptors: [stdin, stdout, stderr],
                onSignal: watch)
        } catch {
            throw RunnerError(Self.notStarted, input: error.input, problem: error.problem, fix: error.fix)
        }
        var requested: Int32 = 0
        var watching = stopRequests
        var result: (code: Int32, status: Int32, state: String)?
        while result == nil {
            if changed {
                changed = false
                result = try mainProcess(
                    bus: bus, path: path, ended: jobResult != nil || requested != 0, onSignal: watch)
                continue
            }
            let ready = bus.poll(timeout: 1, alsoWatching: watching)
            if ready.other, let fd = watching {
                var byte: UInt8 = 0
                let n = read(fd, &byte, 1)
                if n < 0, errno == EINTR || errno == EAGAIN { continue }
                if n <= 0 { watching = nil }
                if requested == 0 && (n <= 0 || byte != StopSignals.killByte) {
                    requested = n == 1 ? Int32(byte) : SIGTERM
                    try bus.send(
                        path: Self.manager, interface: Self.managerInterface, member: "StopUnit", signature: "ss",
                        body: Self.strings([unit, "replace"]))
                } else if n == 1 {
                    requested = requested == 0 ? SIGKILL : requested
                    var body = DBusWriter()
                    body.string(unit)
                    body.string("all")
                    body.uint32(UInt32(bitPattern: SIGKILL))
                    try bus.send(
                        path: Self.manager, interface: Self.managerInterface, member: "KillUnit", signature: "ssi",
                        body: body.bytes)
                }
            }
            if ready.bus {
                watch(try bus.receive())
            } else if !ready.other {
                changed = true  // a quiet second: look anyway
            }
        }
        // Ends what the step left running; an inactive transient unit is unloaded, a failed one
        // once reset.
        _ = try? bus.call(
            path: Self.manager, interface: Self.managerInterface, member: "StopUnit", signature: "ss",
            body: Self.strings([unit, "replace"]))
        if result?.code != 1 || result?.status != 0 {
            _ = try? bus.call(
                path: Self.manager, interface: Self.managerInterface, member: "ResetFailedUnit", signature: "s",
                body: Self.strings([unit]))
        }
        if requested != 0 { return .signaled(requested) }
        guard let result, result.code != 0 else {
            throw RunnerError(
                .commandFailed, input: unit,
                problem: "systemd could not start the step (the unit is \(result?.state ?? "gone"))",
                fix: "see `journalctl -u \(unit)` in the guest")
        }
        switch result.code {
        case 1: return .exited(result.status)  // CLD_EXITED
        default: return .signaled(result.status)  // CLD_KILLED, CLD_DUMPED
        }
    }

    /// The unit's main process status once it has ended (`ExecMainCode` ≠ 0), or the unit's
    /// state when it failed without one; nil while it runs. The state is read first: a unit
    /// already failed then has its final `ExecMainCode`.
    private func mainProcess(
        bus: SystemdBus, path: String, ended: Bool, onSignal: (SystemdBus.Message) -> Void
    ) throws(RunnerError) -> (code: Int32, status: Int32, state: String)? {
        let state: String
        let service: SystemdBus.Message
        do {
            let unit = try bus.call(
                path: path, interface: "org.freedesktop.DBus.Properties", member: "Get", signature: "ss",
                body: Self.strings(["org.freedesktop.systemd1.Unit", "ActiveState"]), onSignal: onSignal)
            var unitReader = DBusReader(unit.body)
            state = (try? unitReader.signature()) == "s" ? (try? unitReader.string()) ?? "" : ""
            service = try bus.call(
                path: path, interface: "org.freedesktop.DBus.Properties", member: "GetAll", signature: "s",
                body: Self.strings(["org.freedesktop.systemd1.Service"]), onSignal: onSignal)
        } catch {
            return (0, 0, "gone")
        }
        var reader = DBusReader(service.body)
        let values = (try? reader.properties(["ExecMainCode", "ExecMainStatus"])) ?? [:]
        let code = values["ExecMainCode"].flatMap { Int32($0) } ?? 0
        if code != 0 { return (code, values["ExecMainStatus"].flatMap { Int32($0) } ?? 0, "ended") }
        // "inactive" is what a unit is before its start job ran, and after a stop (a stopped
        // transient unit is unloaded, and systemd then describes any name as inactive): it is an
        // end only once the start job is over or we asked for the stop (`ended`).
        if state == "failed" || (state == "inactive" && ended) { return (0, 0, state) }
        return nil
    }

    static func strings(_ values: [String]) -> [UInt8] {
        var body = DBusWriter()
        values.forEach { body.string($0) }
        return body.bytes
    }
}
