import CRunnerSystem
import Dispatch
import FoundationEssentials
import Logging
import RunnerCore
import RunnerImages
import RunnerSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Boots, enters, stops and sweeps ephemeral nspawn guests. Every input is checked against
/// ``GuestPolicy``: this is what runs as root.
public struct GuestManager: Sendable {
    public var policy: GuestPolicy
    public var runner: any CommandRunner
    public var logger: Logger
    /// The config.env settings the policy came from (what `ci-nspawn-run settings` prints).
    public var settings = HookSettings()
    /// Records decoded once per version of their file (the step relay's, which reads its
    /// guest's record on every step); nil: every read decodes.
    package var recordCache: GuestRecordCache?
    /// The kernel's links, addresses and routes that private networks change (rtnetlink; a
    /// recording stand-in in unit tests).
    package var networkLinks: any NetworkLinks = KernelNetworkLinks()

    public init(policy: GuestPolicy, runner: any CommandRunner = SystemCommandRunner(), logger: Logger) {
        self.policy = policy
        self.runner = runner
        self.logger = logger
    }

    package var layout: HostLayout { policy.layout }

    // MARK: start

    /// A registry tree a guest boots from: pinned for the guest's owner (the budget and `image
    /// remove` leave it alone until the job ends: ``RegistryImageStore/pin(_:blobs:holder:)``),
    /// then checked still there, and marked used now (its last use, which the budget orders by).
    func holdRegistryImage(_ hex: String, rootfs: String, owner: GuestOwner) async throws(RunnerError) {
        let store = RegistryImageStore(layout: layout, logger: logger)
        let holder = ImageHolder(pid: owner.pid, startTime: owner.startTime)
        try await DedicatedThread.run { () throws(RunnerError) in
            try store.pin(hex, holder: holder)
            guard FilePaths.exists(rootfs) else {
                throw RunnerError(
                    .notFound, input: "sha256:" + hex, problem: "was removed from the registry content store",
                    fix: "run the job again (its prepare step pulls the image)")
            }
            do {
                try store.touch(hex: hex)
            } catch {
                logger.warning("could not mark the image used", metadata: ["digest": "\(hex)", "error": "\(error)"])
            }
        }
    }

    /// Boots a guest for this process's caller, without a step relay (see
    /// ``start(_:caller:relay:)``).
    public func start(_ request: GuestStartRequest) async throws(RunnerError) -> GuestInfo {
        try await start(request, caller: .current, relay: nil)
    }

    /// Boots a guest and returns once its init reported READY=1. Its owner must be one the
    /// caller may name (see ``GuestOwner``). With `relay`, the guest's step relay for that user
    /// starts with it, while the guest boots (``RelayProcess``), and goes with it.
    public func start(_ request: GuestStartRequest, caller: GuestOwner.Caller, relay: RelayProcess? = nil)
        async throws(RunnerError) -> GuestInfo
    {
        try GuestOwner.checkRequested(request.ownerPID)
        // A tree whose owners must be shifted is shifted once, unless guests still boot from it.
        let busy: (String) -> Bool = { tree in list().contains { $0.rootfs == tree && !isStale($0) } }
        let rootfs: String
        var imageConfig: OCIImageConfig?
        if let hex = GuestPolicy.registryTreeDigest(request.image) {
            (rootfs, imageConfig) = try policy.registryImage(hex, busy: busy)
        } else {
            rootfs = try policy.imageRootfs(request.image, busy: busy)
        }
        // The image decides: systemd boots; anything else runs under nspawn's stub init.
        let initSystem: GuestInit = GuestTreeFile.bootsSystemd(rootfs: rootfs) ? .systemd : .stub
        let stub = initSystem == .stub ? try stubPlan(request, rootfs: rootfs, config: imageConfig) : nil
        let checked = try request.binds.map { bind throws(RunnerError) in try policy.check(bind) }
        for alias in request.hostAliases {
            guard !alias.isEmpty, alias.count <= 63,
                alias.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") })
            else {
                throw RunnerError(
                    .invalidInput, input: alias, problem: "is not a valid host name for a service",
                    fix: "use lowercase letters, digits and -")
            }
        }
        for (alias, address) in request.hostAddresses {
            guard request.hostAliases.contains(alias), JobNetwork.ipv4(address) != nil else {
                throw RunnerError(
                    .invalidInput, input: "\(alias)=\(address)",
                    problem: "is not a service alias of this request with an IPv4 address",
                    fix: "name each alias in hostAliases and give it the service guest's address")
            }
        }
        try Self.checkPorts(request.ports, image: request.image, sharedNetwork: policy.network == nil)
        let owner = try GuestOwner.resolve(requested: request.ownerPID, caller: caller)
        if let hex = GuestPolicy.registryTreeDigest(request.image) {
            try await holdRegistryImage(hex, rootfs: rootfs, owner: owner)
        }
        let capabilities = try policy.checkCapabilities(request.capabilities, image: request.image)
        let environment = ServiceEnvironment.dropIn(request.environment)
        // /run/runner is searchable (the runner user reaches its relay sockets there); the
        // guest records under it are root's.
        try FilePaths.createDirectory(layout.runtimeDirectory, mode: 0o755)
        try FilePaths.createDirectory(layout.guestStateDirectory, mode: 0o700)
        let name = GuestName.generate()
        var record = GuestRecord(
            name: name, image: request.image, rootfs: rootfs, backend: policy.backend, status: .starting,
            starterPID: getpid(), starterStartTime: ProcessTable.startTime(of: getpid()), binds: checked.map(\.bind),
            isAlpine: GuestTreeFile.isAlpine(rootfs: rootfs))
        record.userNamespace = policy.userNamespace
        record.initSystem = initSystem
        record.stepUser = stub?.user
        record.defaultWorkingDirectory = imageConfig?.config?.workingDir.flatMap { $0.isEmpty ? nil : $0 }
        record.ownerPID = owner.pid
        record.ownerStartTime = owner.startTime
        if !capabilities.isEmpty { record.addedCapabilities = capabilities }
        let limits = policy.limits.narrowed(to: request.limits)
        if !limits.isEmpty { record.limits = limits }
        // The job's limits are the job's, not each guest's: on a parent all its guests share
        // (direct backend: a cgroup; machined: the job's slice), the guest's own (`--memory`,
        // `--cpus`) on it within them.
        var ownLimits = limits
        if !policy.limits.isEmpty {
            record.limitsJob = GuestNetworkNames.jobID(ownerPID: owner.pid, startTime: owner.startTime)
            ownLimits = policy.limits.requested(request.limits)
        }
        try save(record)
        do {
            var options = SystemdNspawn.BootOptions(directory: rootfs, machine: name)
            options.binds = try stage(checked, record: &record)
            options.userNamespace = policy.userNamespace
            if let network = policy.network {
                let attachment = try await attachNetwork(network, record: &record, ports: request.ports)
                options.networkBridge = attachment.bridge
                let resolv = jobNetwork(network).resolvConf()
                try AtomicFile.write(Array(resolv.utf8), to: layout.guestResolvFile(name), durable: false)
                try handToGuestRoot(layout.guestResolvFile(name))
                options.binds.append(
                    GuestBind(source: layout.guestResolvFile(name), target: "/etc/resolv.conf", readOnly: true))
            }
            if !request.hostAliases.isEmpty || record.network != nil {
                var hosts = "127.0.0.1\tlocalhost \(name)\n::1\tlocalhost ip6-localhost\n"
                if let address = record.network?.address { hosts += "\(address)\t\(name)\n" }
                // Services at their addresses on the job's network; other aliases (host network,
                // or a caller that named none) at 127.0.0.1 as before.
                var local: [String] = []
                for alias in request.hostAliases {
                    if let address = request.hostAddresses[alias] {
                        hosts += "\(address)\t\(alias)\n"
                    } else {
                        local.append(alias)
                    }
                }
                if !local.isEmpty { hosts += "127.0.0.1\t\(local.joined(separator: " "))\n" }
                try AtomicFile.write(Array(hosts.utf8), to: layout.guestHostsFile(name), durable: false)
                try handToGuestRoot(layout.guestHostsFile(name))
                options.binds.append(
                    GuestBind(source: layout.guestHostsFile(name), target: "/etc/hosts", readOnly: true))
            }
            if let stub {
                // The service's environment (image Env under the workflow's env:), for its main
                // process only: a 0600 file of the user it runs as, root's on the host side.
                if let text = stub.environmentFile {
                    try AtomicFile.write(
                        Array(text.utf8), to: layout.guestEnvironmentFile(name), mode: 0o600, durable: false)
                    try handToGuestUser(layout.guestEnvironmentFile(name), user: stub.user)
                    options.binds.append(
                        GuestBind(
                            source: layout.guestEnvironmentFile(name), target: Self.stubEnvironmentFile,
                            readOnly: true))
                }
            } else if !request.environment.isEmpty {
                // Read by the guest's manager at boot; root-only on the host, gone with the guest.
                try AtomicFile.write(
                    Array(environment.text.utf8), to: layout.guestEnvironmentFile(name), mode: 0o600, durable: false)
                try handToGuestRoot(layout.guestEnvironmentFile(name))
                options.binds.append(
                    GuestBind(
                        source: layout.guestEnvironmentFile(name), target: Self.environmentDropIn, readOnly: true))
            }
            let command: (Bool) -> Command = { register in
                if let stub {
                    var container = SystemdNspawn.ContainerOptions(
                        directory: rootfs, machine: name, command: stub.command)
                    container.binds = options.binds
                    container.userNamespace = options.userNamespace
                    container.register = register
                    container.workingDirectory = stub.workingDirectory
                    container.user = stub.nspawnUser
                    container.networkBridge = options.networkBridge
                    return SystemdNspawn().container(container)
                }
                var boot = options
                boot.register = register
                return SystemdNspawn().boot(boot)
            }
            switch policy.backend {
            case .direct:
                try await bootDirect(
                    command(false), userNamespace: options.userNamespace, ownLimits: ownLimits, relay: relay,
                    record: &record)
            case .machined:
                if let relay {
                    try startRelay(relay, record: &record)
                    try save(record)
                }
                try await bootMachined(command(true), ownLimits: ownLimits, record: &record)
            }
            if let network = policy.network, let attachment = record.network {
                // The guest's end of its link, then the job's published ports (DNAT to it).
                let job = jobNetwork(network)
                try await job.configureGuest(leader: record.leaderPID ?? 0, attachment)
                if !attachment.ports.isEmpty {
                    try await job.applyJobTable(id: attachment.id, attachments: jobAttachments(attachment.id))
                }
            } else {
                try await publish(request.ports, record: record)
            }
            record.status = .running
            try save(record)
            logger.debug("guest started", metadata: ["guest": "\(name)", "leader": "\(record.leaderPID ?? 0)"])
            var info = GuestInfo(
                name: name, image: request.image, leaderPID: record.leaderPID ?? 0, isAlpine: record.isAlpine,
                initSystem: initSystem, imageEnvironment: imageConfig.map { $0.config?.env ?? [] },
                imageWorkingDirectory: record.defaultWorkingDirectory, address: record.network?.address)
            info.stepUID = record.stepUser.map(\.uid)
            return info
        } catch {
            await teardown(record)
            throw error
        }
    }

    /// The host side of private networks, with this manager's runner and logger.
    func jobNetwork(_ network: GuestNetworkPolicy) -> JobNetwork {
        JobNetwork(policy: network, layout: layout, runner: runner, logger: logger, links: networkLinks)
    }

    /// The network attachments of job `id`'s guests, from their records.
    func jobAttachments(_ id: String) -> [GuestNetworkAttachment] {
        list().compactMap(\.network).filter { $0.id == id }.sorted { $0.address < $1.address }
    }

    /// Puts the guest on its job's network (the job's bridge made with its first guest) and
    /// records where, under a lock, so concurrent starts never share an address or a subnet.
    private func attachNetwork(_ network: GuestNetworkPolicy, record: inout GuestRecord, ports: [PortMapping])
        async throws(RunnerError) -> GuestNetworkAttachment
    {
        let id = GuestNetworkNames.jobID(ownerPID: record.ownerPID ?? 0, startTime: record.ownerStartTime)
        let lock = try await NetworkLock.acquire(layout.guestNetworkLock)
        defer { lock.release() }
        let others = list().filter { $0.name != record.name && !isStale($0) }
        var attachment = try await jobNetwork(network).attach(id: id, others: others)
        attachment.ports = ports
        record.network = attachment
        try save(record)
        return attachment
    }

    /// Gives a file the helper generated for a guest (its `/etc/hosts`, a service's environment
    /// drop-in) to the guest's root, so the guest's systemd (host UID `base`) can read it; it is
    /// bound read-only without an idmap. The files live in the root-only (0700) guest state
    /// directory, so no host user but root reaches them.
    private func handToGuestRoot(_ path: String) throws(RunnerError) {
        guard let userNamespace = policy.userNamespace else { return }
        guard chown(path, userNamespace.base, userNamespace.base) == 0 else {
            throw RunnerError.posix("could not hand the file to the guest's root", path, fix: nil)
        }
    }

    /// Mounts every checked bind source on its staging entry (``BindStaging``) and returns the
    /// binds nspawn gets: the staging paths, never the caller's (with the mapping the policy
    /// chose: nspawn's `rootidmap` maps the staging mount's top directory, the source itself).
    private func stage(_ checked: [CheckedBind], record: inout GuestRecord) throws(RunnerError) -> [GuestBind] {
        var binds: [GuestBind] = []
        var staged: [StagedBind] = []
        for (index, bind) in checked.enumerated() {
            guard bind.descriptor != nil else {
                binds.append(bind.bind)
                continue
            }
            staged.append(try BindStaging.stage(bind, index: index, guest: record.name, layout: layout))
            binds.append(
                GuestBind(
                    source: layout.guestBindStaging(record.name, index: index), target: bind.bind.target,
                    readOnly: bind.bind.readOnly, ownerMapping: bind.bind.ownerMapping))
        }
        // (A start that fails midway leaves entries `BindStaging.remove` finds without the record.)
        record.stagedBinds = staged
        try save(record)
        return binds
    }

    /// Where a service's environment drop-in is bound in its guest.
    static let environmentDropIn = "/etc/systemd/system.conf.d/90-runner-service-env.conf"

    /// Refuses duplicate host ports, UDP mappings that need a proxy, and ports something on the
    /// host already holds (the service's own port, and the host side of a proxied one).
    static func checkPorts(_ ports: [PortMapping], image: String, sharedNetwork: Bool = true) throws(RunnerError) {
        for port in ports {
            guard port.hostPort > 0, port.containerPort > 0, port.hostAddress.map(IPAddress.isLiteral) ?? true else {
                throw RunnerError(
                    .invalidInput, input: "\(image) port \(port.listenAddress):\(port.containerPort)",
                    problem: "is not a port mapping (ports 1-65535, an IP literal as the address)")
            }
        }
        // Every bound port must be free now: so a proxy's target (the service's own port) is
        // never something that already listens on the host.
        try PortMapping.checkClaims([(image, ports)], sharedNetwork: sharedNetwork) { address, port in
            TCPSocket.portIsFree(address: address, port: port)
        }
    }

    /// Starts a socket-activated proxy in the guest for every mapped port whose host side is not
    /// the service's own port.
    private func publish(_ ports: [PortMapping], record: GuestRecord) async throws(RunnerError) {
        let proxied = ports.filter { $0.needsProxy && !$0.udp }
        guard !proxied.isEmpty else { return }
        let candidates = ["/usr/lib/systemd/systemd-socket-proxyd", "/lib/systemd/systemd-socket-proxyd"]
        guard let proxy = candidates.first(where: { FilePaths.exists(record.rootfs + $0) }) else {
            throw RunnerError(
                .unsupported, input: record.image,
                problem: "image has no systemd-socket-proxyd, which mapping a port to another host port needs",
                fix: "map the service's own port (ports: [\"\(proxied[0].containerPort)\"]), or add systemd's "
                    + "socket proxy to the image")
        }
        // Over the guest's bus, which blocks: on a thread of its own.
        try await DedicatedThread.run { () throws(RunnerError) in
            let bus = try GuestBus.connect(leader: record.leaderPID ?? 0, guest: record.name)
            for port in proxied {
                let unit = SocketProxyUnit(
                    name: "runner-port-\(port.hostPort)", listen: port.listenAddress,
                    target: "127.0.0.1:\(port.containerPort)", proxy: proxy)
                do throws(RunnerError) {
                    try unit.start(bus: bus)
                } catch {
                    throw RunnerError(
                        .commandFailed, input: "\(record.image) port \(port.listenAddress)",
                        problem: "could not listen on the host port: " + error.problem,
                        fix: "map the service to a free host port")
                }
            }
        }
    }

    /// The guest's step relay, started while the guest boots (its start costs the
    /// guest's start nothing), recorded in `record` (the caller saves it).
    private func startRelay(_ relay: RelayProcess, record: inout GuestRecord) throws(RunnerError) {
        let process = try relay.spawn(guest: record.name, layout: layout, workOwner: policy.workOwner)
        record.relayPID = process.pid
        record.relayStartTime = process.startTime
    }

    private func bootDirect(
        _ nspawn: Command, userNamespace: GuestUserNamespace?, ownLimits: GuestLimits, relay: RelayProcess?,
        record: inout GuestRecord
    ) async throws(RunnerError) {
        let name = record.name
        let socket = try NotifySocket(path: layout.guestNotifySocket(name))
        var command = nspawn
        command.environment["NOTIFY_SOCKET"] = socket.path
        let log = layout.guestLog(name)
        // A user-namespaced guest's systemd needs a cgroup nspawn can delegate to it: its own.
        // Limits live in those cgroups too (in v1 controller hierarchies on hybrid hosts).
        // A job with limits: the guest's cgroups under the job's parent, which carries them.
        if userNamespace != nil || record.limits != nil {
            let job = record.limitsJob.map { GuestCgroups.Job(id: $0, limits: policy.limits) }
            command = try policy.cgroups.entering(guest: name, job: job, limits: ownLimits, command)
        }
        // A daemon in a session of its own: it outlives this helper.
        let nspawn = try runner.start(command, options: StartOptions(output: .file(log), grouping: .newSession))
        record.nspawnPID = nspawn.pid
        record.nspawnStartTime = ProcessTable.startTime(of: nspawn.pid)
        // The relay starts once nspawn has: the guest's boot is the longer wait.
        if let relay { try startRelay(relay, record: &record) }
        try save(record)
        let image = record.image
        let stub = record.initSystem == .stub
        let started = command
        // The leader as soon as nspawn names it (teardown kills it, should the boot fail).
        let leader = Mutex<Int32?>(nil)
        defer { record.leaderPID = leader.withLock { $0 } ?? record.leaderPID }
        // The notify socket is read with a blocking poll: on a thread of its own.
        try await DedicatedThread.run { () throws(RunnerError) in
            let deadline = MonotonicClock.now() + policy.bootTimeout
            while true {
                let remaining = deadline - MonotonicClock.now()
                if remaining <= 0 {
                    throw RunnerError(
                        .timeout, input: image,
                        problem: "guest \(name) did not report READY=1 within \(Int(policy.bootTimeout)) s"
                            + logTail(name),
                        fix: stub
                            ? "check the image's main process (see the guest's log)"
                            : "check that the image boots systemd (it needs systemd and dbus)")
                }
                if let lines = socket.receive(timeout: min(remaining, 0.2)) {
                    for line in lines {
                        if line.hasPrefix("X_NSPAWN_LEADER_PID="), let pid = Int32(line.dropFirst(20)) {
                            leader.withLock { $0 = pid }
                        }
                    }
                    if lines.contains("READY=1"), leader.withLock({ $0 }) != nil { return }
                } else if let status = nspawn.poll() {
                    throw RunnerError(
                        .commandFailed, input: started.description,
                        problem: "systemd-nspawn ended (\(status)) before the guest was ready" + logTail(name),
                        fix: "check the image and the mounts")
                }
            }
        }
    }

    private func bootMachined(_ nspawn: Command, ownLimits: GuestLimits, record: inout GuestRecord)
        async throws(RunnerError)
    {
        let seconds = Int(policy.bootTimeout)
        var service = SystemdRun.GuestServiceOptions(
            unit: record.name, startTimeoutSeconds: seconds, limits: record.limits ?? GuestLimits())
        if let job = record.limitsJob {
            // The job's limits on its slice (again for each guest: the same values), before the
            // guest's unit starts it; the guest's own unit gets only what it asked for.
            let set = Timeout().bounded(.init(seconds: 20), JobSlices.setLimits(job: job, policy.limits))
            try await runner.run(set).checked(set, fix: "check that systemd runs and accepts the RUNNER_JOB_* limits")
            service.slice = JobSlices.unit(job: job)
            service.limits = ownLimits
        }
        let command = Timeout().bounded(
            .init(seconds: seconds + 10), SystemdRun().guestService(service, nspawn: nspawn))
        try await runner.run(command).checked(command, fix: "check `journalctl -u \(record.name)`")
        let show = Timeout().bounded(.init(seconds: 10), Machinectl().leader(machine: record.name))
        let leader = try await runner.output(show).split(separator: "\n").first.flatMap { Int32($0) }
        guard let leader else {
            throw RunnerError(.internal, input: show.description, problem: "machined reported no leader PID")
        }
        record.leaderPID = leader
    }

    private func logTail(_ name: String) -> String {
        let lines = log(name, lines: 10)
        return lines.isEmpty ? "" : ":\n" + lines
    }

    /// The last `lines` lines of a guest's log (nspawn's messages and, for a guest without an
    /// init, its main process's console output: a service's own log), carriage returns dropped;
    /// empty when there is none.
    public func log(_ name: String, lines: Int) -> String {
        guard GuestName.isValid(name) else { return "" }
        // Only the end of the file is read (a chatty service's log can be large).
        let fd = open(layout.guestLog(name), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return "" }
        let size = Int(st.st_size)
        let length = min(size, 256 << 10)
        var bytes = [UInt8](repeating: 0, count: length)
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, off_t(size - length)) }
        guard count > 0 else { return "" }
        let text = String(decoding: bytes[0..<count], as: UTF8.self).replacing("\r", with: "")
        return text.split(separator: "\n").suffix(max(0, lines)).joined(separator: "\n")
    }

    // MARK: records

    func save(_ record: GuestRecord) throws(RunnerError) {
        let data: Data
        do {
            data = try JSONEncoder().encode(record)
        } catch {
            throw RunnerError(
                .internal, input: record.name, problem: "could not encode the guest record", underlying: error)
        }
        // Runtime state under /run, gone at boot: atomic for readers, never synced to disk.
        try AtomicFile.write(data, to: layout.guestRecord(record.name), mode: 0o600, durable: false)
    }

    /// The record of `name`, or nil when there is none.
    public func record(_ name: String) throws(RunnerError) -> GuestRecord? {
        try GuestName.check(name)
        let path = layout.guestRecord(name)
        if let recordCache { return try recordCache.record(at: path) }
        guard FilePaths.exists(path) else { return nil }
        return try GuestRecord.decode(try FilePaths.read(path), path: path)
    }

    /// The record of a guest that is running, or a clear error.
    public func running(_ name: String) throws(RunnerError) -> GuestRecord {
        guard let record = try record(name) else {
            throw RunnerError(
                .notFound, input: name, problem: "no such guest (it was stopped, or never started on this host)",
                fix: "the job's guest is gone; re-run the job")
        }
        guard record.status == .running, let leader = record.leaderPID, ProcessTable.isAlive(leader, startTime: nil),
            record.backend == .machined
                || ProcessTable.isAlive(record.nspawnPID ?? 0, startTime: record.nspawnStartTime)
        else {
            throw RunnerError(
                .notFound, input: name, problem: "the guest is not running any more",
                fix: "the job's guest is gone; re-run the job (and run `ci-nspawn-run gc`)")
        }
        return record
    }

    /// Every record under `/run/runner/guests`.
    public func list() -> [GuestRecord] {
        guard let dir = opendir(layout.guestStateDirectory) else { return [] }
        var names: [String] = []
        while let entry = readdir(dir) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if file.hasSuffix(".json") { names.append(String(file.dropLast(5))) }
        }
        closedir(dir)
        return names.sorted().compactMap { try? record($0) }
    }

    // MARK: exec

    /// Runs `command` in the guest as a transient unit over the guest's systemd (see
    /// ``GuestBus``), output passed through, and returns its status. SIGINT/SIGTERM stop the
    /// unit (a second one kills it). Afterwards, what the step left under the work directory is
    /// handed to the work directory's owner. Nothing from the guest's file system runs here.
    public func exec(
        _ name: String, command: [String], environment: [String: String], workingDirectory: String?,
        timeout: Double?
    ) async throws(RunnerError) -> ExitStatus {
        let step = try prepareStep(
            name, command: command, environment: environment, workingDirectory: workingDirectory, timeout: timeout)
        // The step runs over the guest's bus, which blocks until it ends: on a thread of its own.
        return try await DedicatedThread.run { () throws(RunnerError) -> ExitStatus in
            // Our stdout/stderr are the caller's (through sudo: any descriptor it chose).
            let stdout = try StepOutput.prepare(1)
            let stderr = try StepOutput.prepare(2)
            defer {
                stdout.finish()
                stderr.finish()
            }
            // Signals become bytes on a pipe the unit's runner watches (the first: the signal, to
            // stop the unit; a second one: kill).
            var stops: [Int32] = [-1, -1]
            guard runner_pipe_cloexec(&stops) == 0 else {
                throw RunnerError.posix("could not create a pipe", name, fix: nil)
            }
            defer { stops.forEach { close($0) } }
            let forwarder = StopSignals.forward(to: stops[1])
            defer { forwarder.cancel() }
            let status = try runStep(
                step, stdout: stdout.descriptor, stderr: stderr.descriptor, stopRequests: stops[0])
            finishStep(step.record)
            return status
        }
    }

    /// Runs a prepared step on a fresh connection to its guest's systemd.
    func runStep(_ step: PreparedStep, stdout: Int32, stderr: Int32, stopRequests: Int32?) throws(RunnerError)
        -> ExitStatus
    {
        var bus: SystemdBus?
        return try Self.runStep(step, bus: &bus, stdout: stdout, stderr: stderr, stopRequests: stopRequests)
    }

    /// Runs a prepared step over `bus` (connected when nil; kept for the next step). A connection
    /// that broke before systemd took the step is made anew once; then the step fails clearly.
    static func runStep(
        _ step: PreparedStep, bus: inout SystemdBus?, stdout: Int32, stderr: Int32, stopRequests: Int32?
    ) throws(RunnerError) -> ExitStatus {
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devNull) }
        // A step the OOM killer hit fails with a message that says so.
        let memoryMax = step.record.limits?.memoryMax
        let oomBefore = memoryMax.flatMap { _ in GuestCgroups().oomKills(guest: step.record.name) }
        func reported(_ status: ExitStatus) -> ExitStatus {
            guard let memoryMax, !status.isSuccess, let before = oomBefore,
                let after = GuestCgroups().oomKills(guest: step.record.name), after > before
            else { return status }
            let text =
                "::error::This step ran out of memory: the kernel's OOM killer ended it (this job's guests "
                + "may use \(memoryMax / 1_048_576) MiB: RUNNER_JOB_MEMORY_MAX, or options: --memory)\n"
            // A pipe or a socket (``StepOutput``): write(2), which takes both.
            let bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { write(stdout, $0.baseAddress?.advanced(by: offset), $0.count - offset) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                offset += n
            }
            return status
        }
        let unit: StepUnit
        switch step.kind {
        case .entered(let entered):
            // No init of ours in the guest: the step enters its namespaces from here.
            return reported(
                try entered.run(
                    leader: step.record.leaderPID ?? 0, guest: step.record.name, stdin: devNull, stdout: stdout,
                    stderr: stderr, stopRequests: stopRequests))
        case .unit(let stepUnit):
            unit = stepUnit
        }
        var attempt = 0
        while true {
            attempt += 1
            let connection: SystemdBus
            if let bus {
                connection = bus
            } else {
                connection = try GuestBus.connect(leader: step.record.leaderPID ?? 0, guest: step.record.name)
                bus = connection
            }
            do {
                return reported(
                    try unit.run(
                        bus: connection, stdin: devNull, stdout: stdout, stderr: stderr, stopRequests: stopRequests))
            } catch {
                bus = nil  // made anew for the next step
                guard error.code == StepUnit.notStarted else { throw error }
                guard attempt < 2 else {
                    throw RunnerError(
                        .commandFailed, input: step.record.name,
                        problem: "the guest's systemd did not take the step: \(error.problem)",
                        fix: "check the guest (`ci-nspawn-run list`); re-run the job")
                }
            }
        }
    }

    /// A step ready to run: the guest's record, and the transient unit its systemd runs or, in
    /// a guest without an init of ours, the process the relay starts in it.
    struct PreparedStep {
        var record: GuestRecord
        var kind: Kind

        enum Kind {
            case unit(StepUnit)
            case entered(EnteredStep)
        }
    }

    /// Checks that the guest runs and builds the step's unit (``exec`` and the step relay).
    func prepareStep(
        _ name: String, command: [String], environment: [String: String], workingDirectory: String?,
        timeout: Double? = nil
    ) throws(RunnerError) -> PreparedStep {
        let record = try running(name)
        // The same checks for both kinds of guest (a command, an absolute working directory, a
        // bounded timeout).
        let unit = try stepUnit(
            record, command: command, environment: environment, workingDirectory: workingDirectory, timeout: timeout)
        guard record.initSystem == .stub else { return PreparedStep(record: record, kind: .unit(unit)) }
        let entered = try enteredStep(
            record, command: command, environment: environment, workingDirectory: workingDirectory, timeout: timeout)
        return PreparedStep(record: record, kind: .entered(entered))
    }

    /// After a step: hands what it left in the workspace back to the work owner.
    func finishStep(_ record: GuestRecord) {
        // In a user namespace, guest root writes binds as their owners (rootidmap): no walk.
        guard record.userNamespace == nil else { return }
        let started = MonotonicClock.now()
        let counts = fixOwnership(record)
        logger.debug(
            "workspace ownership",
            metadata: [
                "visited": "\(counts.visited)", "changed": "\(counts.changed)", "complete": "\(counts.complete)",
                "seconds": "\(MonotonicClock.now() - started)",
            ])
    }

    /// The most output a health check keeps (of each stream); the rest is read and dropped.
    static let probeOutputLimit = 64 << 10

    /// Runs `command` in the guest as a transient unit that systemd stops after `timeout`
    /// seconds, and returns its status and output (a service's health check), over the guest's
    /// systemd like a step.
    public func probe(_ name: String, command: [String], timeout: Double) async throws(RunnerError) -> CommandResult {
        let step = try prepareStep(name, command: command, environment: [:], workingDirectory: nil, timeout: timeout)
        // The step runs over the guest's bus, which blocks until it ends: on a thread of its own.
        return try await DedicatedThread.run { () throws(RunnerError) -> CommandResult in
            try runProbe(step, name: name)
        }
    }

    /// Runs a prepared health check on this thread; its output is read on a second one.
    private func runProbe(_ step: PreparedStep, name: String) throws(RunnerError) -> CommandResult {
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        guard runner_pipe_cloexec(&out) == 0 else { throw RunnerError.posix("could not create a pipe", name, fix: nil) }
        guard runner_pipe_cloexec(&err) == 0 else {
            out.forEach { close($0) }
            throw RunnerError.posix("could not create a pipe", name, fix: nil)
        }
        let readers = (out[0], err[0])
        let collected = Mutex<([UInt8], [UInt8])>(([], []))
        let ended = Mutex(false)
        let done = DispatchSemaphore(value: 0)
        DedicatedThread.start {
            let result = Self.drain(readers.0, readers.1, limit: Self.probeOutputLimit) { ended.withLock { $0 } }
            collected.withLock { $0 = result }
            done.signal()
        }
        var outcome: Result<ExitStatus, RunnerError>
        do {
            outcome = .success(try runStep(step, stdout: out[1], stderr: err[1], stopRequests: nil))
        } catch {
            outcome = .failure(error)
        }
        // The unit is stopped: its processes, and with them systemd's copies of the pipes' write
        // ends, are gone; ours go now, so the reader sees the end.
        close(out[1])
        close(err[1])
        ended.withLock { $0 = true }
        if done.wait(timeout: .now() + 5) == .success {
            close(out[0])
            close(err[0])
        }  // else the reader still holds them: left to the process's exit rather than closed under it
        let status = try outcome.get()
        let (stdout, stderr) = collected.withLock { $0 }
        return CommandResult(
            status: status, standardOutput: String(decoding: stdout, as: UTF8.self),
            standardError: String(decoding: stderr, as: UTF8.self))
    }

    /// Reads two pipes to their ends (each kept up to `limit` bytes, the rest read and dropped);
    /// once `ended` says their writers are gone, a quiet tenth of a second ends it too.
    static func drain(_ first: Int32, _ second: Int32, limit: Int, ended: () -> Bool) -> ([UInt8], [UInt8]) {
        var kept: [[UInt8]] = [[], []]
        var open = [first, second]
        var buffer = [UInt8](repeating: 0, count: 16384)
        while open.contains(where: { $0 >= 0 }) {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), 100)
            if ready < 0, errno == EINTR { continue }
            if ready < 0 { break }
            if ready == 0 {
                if ended() { break }
                continue
            }
            for index in 0..<2 where fds[index].fd >= 0 && fds[index].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(fds[index].fd, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR || errno == EAGAIN { continue }
                if n <= 0 {
                    open[index] = -1
                    continue
                }
                kept[index] += buffer[0..<min(n, max(0, limit - kept[index].count))]
            }
        }
        return (kept[0], kept[1])
    }

    /// The transient unit that runs a step: ExecStart wants an absolute program, so a bare name
    /// (and variables systemd cannot carry) go through the guest's `env(1)`, run by the guest's
    /// systemd inside the unit. The unit keeps ``UnitSandbox``'s capabilities (plus what the
    /// guest was allowed to add) and system-call filter.
    func stepUnit(
        _ record: GuestRecord, command: [String], environment: [String: String], workingDirectory: String?,
        timeout: Double?
    ) throws(RunnerError) -> StepUnit {
        let name = record.name
        guard let program = command.first, !program.isEmpty else {
            throw RunnerError(.invalidInput, input: name, problem: "no command to run", fix: "pass a command after --")
        }
        if let cwd = workingDirectory, !cwd.hasPrefix("/") {
            throw RunnerError(.invalidInput, input: cwd, problem: "working directory is not absolute")
        }
        if let timeout, !(timeout > 0 && timeout <= 86400) {
            throw RunnerError(.invalidInput, input: "\(timeout)", problem: "is not a timeout in seconds (0-86400]")
        }
        let unit = "\(name)-step-\(UInt32.random(in: 0...UInt32.max))"
        var names: [String] = []
        var assignments: [String] = []
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) {
            if EnvironmentName.isValid(key) {
                names.append(key)
            } else if !key.isEmpty, !key.contains("="), !key.contains("\0"), !value.contains("\0") {
                // systemd carries only shell-style names; others (INPUT_FETCH-DEPTH) go to env(1).
                assignments.append(key + "=" + value)
            }
        }
        let unitArgv =
            assignments.isEmpty && program.hasPrefix("/") ? command : ["/usr/bin/env", "--"] + assignments + command
        var unitEnvironment = names.compactMap { name in environment[name].map { name + "=" + $0 } }
        if environment["PATH"] == nil { unitEnvironment.append("PATH=" + GuestDefaults.path) }
        return StepUnit(
            unit: unit + ".service", argv: unitArgv, environment: unitEnvironment,
            workingDirectory: workingDirectory, runtimeMax: timeout,
            sandbox: UnitSandbox(adding: record.addedCapabilities ?? []))
    }

    /// Hands whatever is under the work directory's writable binds back to the work owner.
    ///
    /// Each root is walked by descriptor (``WorkspaceOwnership``): the staging mount when it
    /// still holds the checked source (exactly what the guest could write, wherever the caller
    /// moved it since), else the source re-resolved from the work directory's trusted
    /// descriptor without following links (a root swapped for a link is skipped and logged).
    func fixOwnership(_ record: GuestRecord) -> WorkspaceOwnership.Counts {
        var total = WorkspaceOwnership.Counts()
        let work: PathDescriptor
        do {
            work = try TrustedPath.openAnchor(GuestPolicy.normalized(policy.workDirectory), layout: layout)
        } catch {
            logger.warning("workspace ownership: no work directory", metadata: ["error": "\(error)"])
            total.complete = false
            return total
        }
        guard let owner = policy.workOwner ?? work.status().map({ ($0.st_uid, $0.st_gid) }) else { return total }
        var roots: [StagedBind] = []
        for bind in (record.stagedBinds ?? []).sorted(by: { ($0.workRelative ?? "") < ($1.workRelative ?? "") })
        where !bind.readOnly && bind.isDirectory {
            guard let relative = bind.workRelative else { continue }
            let covered = roots.contains { root in
                let top = root.workRelative ?? ""
                return top.isEmpty || relative == top || relative.hasPrefix(top + "/")
            }
            if !covered { roots.append(bind) }
        }
        for root in roots {
            let directory: PathDescriptor
            if let staged = try? TrustedPath.openAnchor(
                layout.guestBindStaging(record.name, index: root.index), layout: layout),
                let st = staged.status(), UInt64(st.st_dev) == root.device, UInt64(st.st_ino) == root.inode
            {
                directory = staged
            } else {
                do {
                    directory = try TrustedPath.resolve(root.workRelative ?? "", beneath: work, directory: true)
                } catch {
                    logger.warning(
                        "workspace ownership: root skipped", metadata: ["root": "\(root.source)", "error": "\(error)"])
                    total.complete = false
                    continue
                }
            }
            let result = WorkspaceOwnership.fix(directory, uid: owner.0, gid: owner.1, logger: logger)
            total.add(result)
        }
        return total
    }

    // MARK: stop and gc

    /// Stops `name` and removes everything it left; a guest that is already gone is fine.
    public func stop(_ name: String) async throws(RunnerError) {
        try await stop([name])
    }

    /// Stops `names` (a job's guests, at its cleanup) and removes everything they left; guests
    /// already gone are fine. The guests shut down at once, not one after the other, and the
    /// network of a job whose every guest is among them (its bridge and nat table) is removed
    /// while they shut down, once, rather than after the last one.
    public func stop(_ names: [String]) async throws(RunnerError) {
        var unique: [String] = []
        for name in names where !unique.contains(name) {
            try GuestName.check(name)
            unique.append(name)
        }
        let records = unique.map { name in (name, try? record(name)) }
        let networks = finishedNetworks(records.compactMap(\.1), stopping: Set(unique))
        await withTaskGroup(of: Void.self) { group in
            if let network = policy.network {
                for id in networks.sorted() {
                    group.addTask { await removeNetwork(network, id: id) }
                }
            }
            for (name, record) in records {
                group.addTask {
                    if let record {
                        await teardown(record, detachNetwork: !networks.contains(record.network?.id ?? ""))
                    } else {
                        await teardown(name: name, backend: policy.backend)
                    }
                }
            }
        }
    }

    /// The job networks of `records` no other guest is on: those go with the guests being
    /// stopped (`stopping`, by name).
    func finishedNetworks(_ records: [GuestRecord], stopping: Set<String>) -> Set<String> {
        guard policy.network != nil else { return [] }
        let ids = Set(records.compactMap(\.network?.id))
        guard !ids.isEmpty else { return [] }
        let others = Set(list().filter { !stopping.contains($0.name) }.compactMap(\.network?.id))
        return ids.subtracting(others)
    }

    /// Stops and removes guests whose job is gone (owner or nspawn process dead, or a start
    /// that was interrupted); with `all`, every guest. Returns the names removed.
    ///
    /// `network` is how much of the host's network state is swept (``NetworkSweep``): `.full`
    /// (the default, `ci-nspawn-run gc`) or `.bridges` (the hook's sweep before a job).
    @discardableResult
    public func gc(all: Bool = false, owner: Int32? = nil, network sweep: NetworkSweep = .full) async -> [String] {
        var removed: [String] = []
        let ownerStart = owner.flatMap { ProcessTable.startTime(of: $0) }
        for record in list() where all || isStale(record) || (owner != nil && isOwned(record, by: owner, ownerStart)) {
            await teardown(record)
            removed.append(record.name)
        }
        removeAbandonedTemporaryFiles()
        // Guests whose record is missing: nspawn processes of our naming on our image store
        // (one look through /proc, for this and the cgroups' sweep). The quick sweep before a
        // job skips that look while no guest's cgroup has processes and no record: on the
        // direct backend with user namespaces every nspawn of ours starts in its guest's cgroup
        // (``GuestCgroups/entering(guest:_:)``), so a guest that lost its record shows there.
        let store = GuestPolicy.realPath(layout.imagesDirectory) ?? layout.imagesDirectory
        let nspawn = sweep == .bridges && !mayHaveGuestsWithoutRecord() ? [] : Self.nspawnProcesses()
        for (pid, name) in nspawn where !FilePaths.exists(layout.guestRecord(name)) {
            let args = ProcessTable.commandLine(of: pid)
            guard args.contains(where: { $0.hasPrefix("--directory=" + store + "/") }) else { continue }
            await Self.terminate(pid: pid, startTime: ProcessTable.startTime(of: pid))
            await cleanFiles(name)
            removed.append(name)
        }
        // Staging mounts of guests whose record is gone (a helper that died mid-start).
        for name in BindStaging.orphans(layout: layout) {
            await cleanFiles(name)
            if !removed.contains(name) { removed.append(name) }
        }
        sweepCgroups(nspawn: nspawn.filter { !removed.contains($0.1) })
        // Slices of jobs that have no guest any more (a killed job's, machined backend).
        let jobs = Set(list().compactMap(\.limitsJob))
        for job in policy.backend == .machined ? policy.slices.jobIDs() : [] where !jobs.contains(job) {
            await removeJobSlice(job)
        }
        if let network = policy.network {
            let job = jobNetwork(network)
            let live = Set(list().compactMap(\.network?.id))
            await job.sweep(live: live, tables: sweep == .full)
            // At the service's start (it runs `gc --all`) and after any full sweep: the filter
            // table. Before a job it is left to the job's bridge, whose creation applies it again.
            if sweep == .full {
                await ensureFilterTable(job)
            }
        }
        return removed
    }

    private func ensureFilterTable(_ job: JobNetwork) async {
        do {
            try await job.ensureFilterTable()
        } catch {
            logger.warning("guest network: filter table not set up", metadata: ["error": "\(error)"])
        }
    }

    /// Whether an nspawn of ours may run without a record: always, unless every guest starts in
    /// a cgroup of its own (the direct backend with user namespaces) and none of those cgroups
    /// without a record has processes.
    func mayHaveGuestsWithoutRecord() -> Bool {
        guard policy.backend == .direct, policy.userNamespace != nil else { return true }
        return policy.cgroups.guestNames().contains {
            !FilePaths.exists(layout.guestRecord($0)) && policy.cgroups.isPopulated(guest: $0)
        }
    }

    /// Removes per-guest cgroups (``GuestCgroups``) left by guests that are gone: no record, no
    /// nspawn process and no process in them (cgroups are host-wide, not under our layout).
    /// `nspawn`: the nspawn processes of guests (``nspawnProcesses()``) still there.
    func sweepCgroups(nspawn: [(Int32, String)]) {
        let live = Set(nspawn.map(\.1))
        for name in policy.cgroups.guestNames()
        where !live.contains(name) && !FilePaths.exists(layout.guestRecord(name))
            && !policy.cgroups.isPopulated(guest: name)
        {
            policy.cgroups.removeNow(guest: name)
        }
        // Job parents (their limits) no guest is under any more.
        policy.cgroups.removeEmptyJobs()
    }

    /// Stops job `id`'s slice (``JobSlices``) and removes its runtime drop-ins (its limits).
    func removeJobSlice(_ id: String) async {
        let stop = Timeout().bounded(.init(seconds: 20), JobSlices.stop(job: id))
        if let result = try? await runner.run(stop), result.status != .exited(0), result.status != .exited(5) {
            logger.warning("job slice did not stop", metadata: ["job": "\(id)", "status": "\(result.status)"])
        }
        policy.slices.removeDropIns(job: id)
    }

    /// Removes `.NAME.json.tmp-PID-N` files of writers that died between write and rename.
    func removeAbandonedTemporaryFiles() {
        for file in FilePaths.entries(of: layout.guestStateDirectory) {
            guard file.hasPrefix("."), let marker = file.firstRange(of: ".tmp-") else { continue }
            let pid = file[marker.upperBound...].prefix { $0 != "-" }
            if let pid = Int32(pid), !ProcessTable.isAlive(pid, startTime: nil) {
                unlink(layout.guestStateDirectory + "/" + file)
            }
        }
    }

    /// Whether `record` belongs to the job of `owner` (same PID and start time).
    func isOwned(_ record: GuestRecord, by owner: Int32?, _ ownerStart: UInt64?) -> Bool {
        guard let owner, record.ownerPID == owner else { return false }
        return ownerStart != nil && record.ownerStartTime == ownerStart
    }

    package func isStale(_ record: GuestRecord) -> Bool {
        switch record.status {
        case .starting:
            return !ProcessTable.isAlive(record.starterPID, startTime: record.starterStartTime)
        case .running:
            // No guest without a live owner (records of older helpers may have none).
            guard let owner = record.ownerPID, ProcessTable.isAlive(owner, startTime: record.ownerStartTime) else {
                return true
            }
            if record.backend == .direct {
                return !ProcessTable.isAlive(record.nspawnPID ?? 0, startTime: record.nspawnStartTime)
            }
            return !ProcessTable.isAlive(record.leaderPID ?? 0, startTime: nil)
        }
    }

    /// Stops the guest of `record` and removes what it left. With `detachNetwork` false its
    /// job's network is left alone (the caller removes it).
    func teardown(_ record: GuestRecord, detachNetwork: Bool = true) async {
        // The step relay needs no orderly end: it goes while the guest shuts down.
        async let relay: Void = terminateRelay(record)
        switch record.backend {
        case .direct:
            if let pid = record.nspawnPID {
                await Self.terminate(pid: pid, startTime: record.nspawnStartTime)
            }
            if let leader = record.leaderPID, let nspawn = record.nspawnPID,
                !ProcessTable.isAlive(nspawn, startTime: record.nspawnStartTime),
                ProcessTable.isAlive(leader, startTime: nil),
                ProcessTable.commandLine(of: leader).first.map({
                    FilePaths.basename($0) == "systemd" || $0.hasSuffix("/init") || $0 == "(sd-stubinit)"
                }
                )
                    ?? false
            {
                kill(leader, SIGKILL)
            }
            if record.nspawnPID == nil {
                // An interrupted start: its spawn may still be between fork and exec, so the
                // nspawn process can appear a moment after the starter died. Watch briefly.
                let end = MonotonicClock.now() + 2
                repeat {
                    for (pid, name) in Self.nspawnProcesses() where name == record.name {
                        await Self.terminate(pid: pid, startTime: ProcessTable.startTime(of: pid))
                    }
                    await MonotonicClock.pause(.milliseconds(50))
                } while MonotonicClock.now() < end
            }
            await cleanFiles(record.name, detachNetwork: detachNetwork)
        case .machined:
            await teardown(name: record.name, backend: .machined, detachNetwork: detachNetwork)
        }
        await relay
    }

    /// Ends the guest's step relay (SIGTERM, then SIGKILL after a grace), if it has one.
    private func terminateRelay(_ record: GuestRecord) async {
        guard let relay = record.relayPID else { return }
        await ProcessTermination.terminate(pid: relay, startTime: record.relayStartTime)
    }

    func teardown(name: String, backend: GuestBackend, detachNetwork: Bool = true) async {
        switch backend {
        case .machined:
            // The guest's unit has KillMode=mixed (see SystemdRun.guestService(_:nspawn:)): stopping it
            // SIGTERMs nspawn, which halts the guest (≈0.25 s); after TimeoutStopSec systemd
            // SIGKILLs the whole unit. Our bound sits above systemd's, then the unit is killed
            // outright, so a wedged guest can never hang cleanup.
            let unit = name + ".service"
            let bound = SystemdRun.guestStopTimeoutSeconds + 10
            let stop = Timeout().bounded(.init(seconds: bound), Systemctl().stop(unit, .init(block: true)))
            // timeout(1) exits 124 (or 137 after --kill-after) when the bound ran out; any other
            // status is systemctl's own answer (5: the unit is already gone).
            let status = (try? await runner.run(stop))?.status
            if status == nil || status == .exited(124) || status == .exited(137) {
                logger.warning("guest unit did not stop in time; killing it", metadata: ["guest": "\(name)"])
                _ = try? await runner.run(
                    Timeout().bounded(.init(seconds: 10), Systemctl().kill(unit, signal: "SIGKILL")))
            }
        case .direct:
            for (pid, guest) in Self.nspawnProcesses() where guest == name {
                await Self.terminate(pid: pid, startTime: ProcessTable.startTime(of: pid))
            }
        }
        await cleanFiles(name, detachNetwork: detachNetwork)
    }

    private func cleanFiles(_ name: String, detachNetwork: Bool = true) async {
        let saved = try? record(name)
        if let record = saved, let relay = record.relayPID {
            await ProcessTermination.terminate(pid: relay, startTime: record.relayStartTime)
        }

        let left = BindStaging.remove(guest: name, layout: layout)
        if !left.isEmpty {
            logger.warning("guest bind staging left behind", metadata: ["guest": "\(name)", "paths": "\(left)"])
        }
        for path in [
            layout.guestNotifySocket(name), layout.guestHostsFile(name), layout.guestLog(name),
            layout.guestEnvironmentFile(name), layout.guestRelaySocket(name), layout.guestResolvFile(name),
            layout.guestRecord(name),
        ] {
            unlink(path)
        }
        // The guest's own cgroups (direct backend, user namespace); the kernel keeps any that
        // still hold a process.
        await policy.cgroups.remove(guest: name)
        // nspawn leaves its propagation directory when /run is not a tmpfs: remove it when empty.
        let propagate = layout.nspawnPropagateDirectory(name)
        rmdir(propagate + "/incoming")
        rmdir(propagate)
        if let record = saved, record.backend == .machined, let job = record.limitsJob,
            !list().contains(where: { $0.limitsJob == job })
        {
            // The job's slice (and its limits) go with its last guest.
            await removeJobSlice(job)
        }
        if detachNetwork, let network = policy.network, let id = saved?.network?.id {
            // The job's bridge and nat table go with its last guest.
            await self.detachNetwork(network, id: id)
        }
    }

    /// Removes job `id`'s bridge and nat table, under the network lock.
    private func removeNetwork(_ network: GuestNetworkPolicy, id: String) async {
        guard let lock = try? await NetworkLock.acquire(layout.guestNetworkLock) else { return }
        defer { lock.release() }
        await jobNetwork(network).remove(id: id)
    }

    /// After a guest of job `id` went: the job's nat table for the guests left, or its bridge
    /// and table removed with its last guest.
    private func detachNetwork(_ network: GuestNetworkPolicy, id: String) async {
        guard let lock = try? await NetworkLock.acquire(layout.guestNetworkLock) else { return }
        defer { lock.release() }
        await jobNetwork(network).detach(id: id, remaining: jobAttachments(id))
    }

    /// SIGTERM (an orderly guest shutdown), then SIGKILL after a grace period.
    static func terminate(pid: Int32, startTime: UInt64?) async {
        guard ProcessTable.isAlive(pid, startTime: startTime) else {
            _ = ChildProcess.reap(pid)
            return
        }
        kill(pid, SIGTERM)
        for (deadline, signal) in [(3.0, SIGKILL), (3.0, Int32(0))] {
            let end = MonotonicClock.now() + deadline
            while MonotonicClock.now() < end {
                _ = ChildProcess.reap(pid)
                if !ProcessTable.isAlive(pid, startTime: startTime) { return }
                await MonotonicClock.pause(.milliseconds(5))
            }
            if signal != 0 {
                // The guest did not shut down in time. Kill its init first: that ends its whole
                // PID namespace; a SIGKILLed nspawn alone would leave the guest's init running.
                for child in ProcessTable.children(of: pid) { kill(child, SIGKILL) }
                kill(pid, signal)
            }
        }
    }

    /// `systemd-nspawn` processes started with `--machine=rg-…` in our own PID namespace (a
    /// nested appliance's guests, visible in /proc but in a guest's namespace, are not ours),
    /// and their guest names.
    static func nspawnProcesses() -> [(Int32, String)] {
        var found: [(Int32, String)] = []
        let ownNamespace = SymbolicLink.target("/proc/self/ns/pid")
        for pid in ProcessTable.allPIDs() where ProcessTable.comm(of: pid) == "systemd-nspawn" {
            guard ownNamespace != nil, SymbolicLink.target("/proc/\(pid)/ns/pid") == ownNamespace else { continue }
            let args = ProcessTable.commandLine(of: pid)
            guard let first = args.first, FilePaths.basename(first) == "systemd-nspawn" else { continue }
            if let machine = args.first(where: { $0.hasPrefix("--machine=rg-") }) {
                let name = String(machine.dropFirst(10))
                if GuestName.isValid(name) { found.append((pid, name)) }
            }
        }
        return found
    }
}
