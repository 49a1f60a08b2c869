import FoundationEssentials
import RunnerCore
import RunnerImages
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// How a guest for an image without systemd is started and entered (``GuestInit/stub``).
struct StubPlan: Sendable, Hashable {
    /// The guest's PID 2.
    var command: [String]
    /// Its working directory (a service's: the image's `WorkingDir`).
    var workingDirectory: String?
    /// `--user=` for a service whose image names a non-root user.
    var nspawnUser: String?
    /// Who steps run as (the image's `USER`).
    var user: ImageUser
    /// A service's environment as a shell file its main process reads; nil for the job guest.
    var environmentFile: String?
}

extension GuestManager {
    /// Where a no-init service's environment file is bound in its guest.
    static let stubEnvironmentFile = "/run/runner-service.env"

    /// What the job guest's PID 2 runs: it only waits, as docker's hook has the job container
    /// run `tail -f /dev/null`.
    static let jobKeepAlive = ["tail", "-f", "/dev/null"]

    /// The plan for a guest without systemd: the image's user (its `/etc/passwd` and
    /// `/etc/group` read by descriptor, never through a link), and its main process: for a
    /// service, `Entrypoint` + `Cmd` (or the workflow's) through the image's `/bin/sh`, which
    /// first reads the service's environment from a file bound read-only into the guest (the
    /// values never reach a command line); for the job container, a program that waits.
    func stubPlan(_ request: GuestStartRequest, rootfs: String, config: OCIImageConfig?) throws(RunnerError)
        -> StubPlan
    {
        let label = request.image
        // docker's --user replaces the image's USER.
        let userSpec = request.user ?? config?.config?.user
        let user = try ImageUser.resolve(
            userSpec, passwd: GuestTreeFile.text("etc/passwd", in: rootfs),
            group: GuestTreeFile.text("etc/group", in: rootfs), image: label)
        guard request.role == .service else {
            return StubPlan(command: Self.jobKeepAlive, user: user)
        }
        let main = (config ?? OCIImageConfig()).mainProcess(
            entrypoint: request.entrypoint.flatMap { $0.isEmpty ? nil : $0 },
            arguments: request.arguments.flatMap { $0.isEmpty ? nil : $0 })
        guard !main.isEmpty, !main[0].isEmpty else {
            throw RunnerError(
                .invalidInput, input: label, problem: "the service's image has no Entrypoint or Cmd to run",
                fix: "give the service an entrypoint (services.<id>.entrypoint/command), or use an image that has one")
        }
        // On a private job network the host port is DNATed to the guest's own port (no proxy);
        // on the host's network a different host port needs the socket proxy, a systemd unit.
        if policy.network == nil, request.ports.contains(where: { $0.needsProxy }) {
            throw RunnerError(
                .unsupported, input: label,
                problem: "a service image without systemd cannot have a port mapped to another host port "
                    + "on the host's network (RUNNER_GUEST_NETWORK=host)",
                fix: "map the service's own port (ports: [\"\(request.ports[0].containerPort)\"]), "
                    + "or use the private job network (RUNNER_GUEST_NETWORK=private)")
        }
        var environment = config?.environment ?? [:]
        for (key, value) in request.environment { environment[key] = value }
        if environment["PATH"] == nil { environment["PATH"] = GuestDefaults.path }
        if environment["HOME"] == nil { environment["HOME"] = user.home }
        let spec = userSpec?.trimmedWhitespace ?? ""
        var nspawnUser: String?
        if user.uid != 0 {
            // nspawn resolves --user in the guest's user database itself; numeric ids it cannot.
            let name = spec.split(separator: ":").first.map(String.init) ?? ""
            guard UInt32(name) == nil, !name.isEmpty else {
                throw RunnerError(
                    .unsupported, input: "\(label) USER \(spec)",
                    problem: "a service without systemd runs as a numeric USER only through a user name",
                    fix: "use an image whose USER is a name in its /etc/passwd")
            }
            nspawnUser = name
        }
        return StubPlan(
            command: ["/bin/sh", "-c", ". \(Self.stubEnvironmentFile) && exec \"$@\"", "sh"] + main,
            workingDirectory: config?.config?.workingDir.flatMap { $0.isEmpty ? nil : $0 }, nspawnUser: nspawnUser,
            user: user, environmentFile: Self.shellEnvironment(environment))
    }

    /// `export NAME='value'` lines a POSIX shell sources: each value single-quoted (a `'` in it
    /// becomes `'\''`), so nothing in it is expanded or run; names that are not shell names, and
    /// values with a NUL, are left out.
    static func shellEnvironment(_ environment: [String: String]) -> String {
        var text = "# Generated by runner-agent for one service guest; removed with the guest.\n"
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) {
            guard EnvironmentName.isValid(name), !value.contains("\0") else { continue }
            text += "export \(name)='" + value.replacing("'", with: "'\\''") + "'\n"
        }
        return text
    }

    /// Gives a file the helper generated for a guest to the guest user `user` (host ids: the
    /// guest's range plus the user's ids), so the guest's process can read it through its
    /// read-only bind; it stays 0600 in the root-only guest state directory.
    func handToGuestUser(_ path: String, user: ImageUser) throws(RunnerError) {
        guard let userNamespace = policy.userNamespace else { return }
        guard chown(path, userNamespace.base + user.uid, userNamespace.base + user.gid) == 0 else {
            throw RunnerError.posix("could not hand the file to the guest's user", path, fix: nil)
        }
    }

    /// A step on the no-init path: the environment exactly as asked (`PATH` and `HOME` filled in
    /// when missing), in the step's working directory or the image's, as the image's user, with
    /// docker's default capability bounding set plus what the job was allowed to add.
    func enteredStep(
        _ record: GuestRecord, command: [String], environment: [String: String], workingDirectory: String?,
        timeout: Double?
    ) throws(RunnerError) -> EnteredStep {
        let user = record.stepUser ?? .root
        var entries: [String] = []
        for (key, value) in environment.sorted(by: { $0.key < $1.key })
        where !key.isEmpty && !key.contains("=") && !key.contains("\0") && !value.contains("\0") {
            entries.append(key + "=" + value)
        }
        if environment["PATH"] == nil { entries.append("PATH=" + GuestDefaults.path) }
        if environment["HOME"] == nil { entries.append("HOME=" + user.home) }
        return EnteredStep(
            argv: command, environment: entries, workingDirectory: workingDirectory ?? record.defaultWorkingDirectory,
            user: user, capabilities: UnitSandbox(adding: record.addedCapabilities ?? []).boundingSet,
            timeout: timeout)
    }
}
