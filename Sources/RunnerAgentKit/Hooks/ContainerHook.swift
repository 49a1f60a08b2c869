import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The container hook: one runner call (`prepare_job`, `run_script_step`, `cleanup_job`,
/// `run_container_step`) in, a response file and an exit code out.
public struct ContainerHook: Sendable {
    public var settings: HookSettings
    public var policy: GuestPolicy
    public var guests: any GuestOperations
    public var logger: Logger
    /// The job's owner (the runner's worker process, our parent): guests outliving it are swept.
    public var ownerPID: Int32
    /// Registry images: the content store, then a pull (``RegistryImages``).
    public var registry: any RegistryImages

    public init(
        settings: HookSettings, policy: GuestPolicy, guests: any GuestOperations, logger: Logger, ownerPID: Int32,
        registry: (any RegistryImages)? = nil
    ) {
        self.settings = settings
        self.policy = policy
        self.guests = guests
        self.logger = logger
        self.ownerPID = ownerPID
        self.registry =
            registry
            ?? HelperRegistryImages(helper: policy.layout.guestHelper, throughSudo: geteuid() != 0, owner: ownerPID)
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
        StandardOutput.write("::error::\(escapeWorkflowCommand(text))\n")
        StandardError.write("runner-agent hook: error: \(text)\n")
    }

    /// A workflow command's message, one line: `%`, CR and LF escaped.
    static func escapeWorkflowCommand(_ text: String) -> String {
        text.replacing("%", with: "%25").replacing("\r", with: "%0D").replacing("\n", with: "%0A")
    }

    // MARK: prepare_job

    func prepareJob(_ input: HookInput) async throws(RunnerError) {
        guard let responseFile = input.responseFile, responseFile.hasPrefix("/") else {
            throw RunnerError(
                .invalidInput, input: "responseFile", problem: "is missing or not an absolute path",
                fix: "the runner always sends <work>/_temp/_runner_hook_responses/<guid>.json")
        }
        // Before a job: the job's own bridge sets the filter table up again (a full sweep lists
        // every nft table on the host, tens of milliseconds on the job's path). It runs while
        // the job's images are found, and ends before the first guest starts.
        async let swept: Void = guests.sweep(owner: nil, network: .bridges)
        var state = HookState()
        do throws(RunnerError) {
            // Everything about the services is checked before the first guest boots.
            var plans: [ServicePlan] = []
            for service in input.args.services { plans.append(try await servicePlan(service)) }
            try PortMapping.checkClaims(
                plans.map { ($0.label, $0.ports) }, sharedNetwork: !settings.privateNetwork
            ) { address, port in
                TCPSocket.portIsFree(address: address, port: port)
            }
            var job: JobPlan?
            if let container = input.args.container { job = try await jobPlan(container) }
            await swept
            var serviceContexts: [HookResponse.Service] = []
            var aliases: [String] = []
            var addresses: [String: String] = [:]
            for plan in plans {
                let binds = try self.binds(plan.service.userMountVolumes)
                var request = GuestStartRequest(
                    image: plan.image, binds: binds, ownerPID: ownerPID, environment: plan.environment,
                    ports: plan.ports, capabilities: plan.capabilities,
                    limits: plan.limits.isEmpty ? nil : plan.limits)
                request.role = .service
                request.user = plan.user
                if let entryPoint = plan.service.entryPoint, !entryPoint.isEmpty { request.entrypoint = [entryPoint] }
                if !plan.service.entryPointArgs.isEmpty { request.arguments = plan.service.entryPointArgs }
                let info = try await guests.start(request)
                state.services.append(info.name)
                do {
                    try await waitUntilReady(plan, guest: info.name, address: info.address)
                } catch {
                    throw await withServiceLog(error, guest: info.name)
                }
                var portMap: [String: String] = [:]
                for port in plan.ports { portMap[String(port.containerPort)] = String(port.hostPort) }
                serviceContexts.append(
                    HookResponse.Service(id: info.name, network: info.address == nil ? "host" : "job", ports: portMap))
                for name in [plan.service.contextName.map(Self.serviceAlias), Self.serviceAlias(plan.label)] {
                    guard let alias = name, !alias.isEmpty, !aliases.contains(alias) else { continue }
                    aliases.append(alias)
                    if let address = info.address { addresses[alias] = address }
                }
            }
            var response = HookResponse(isAlpine: false, context: HookResponse.Context(services: serviceContexts))
            if let job {
                var request = GuestStartRequest(
                    image: job.image, binds: job.binds, hostAliases: aliases, ownerPID: ownerPID,
                    capabilities: job.capabilities, hostAddresses: addresses,
                    limits: job.limits.isEmpty ? nil : job.limits)
                request.user = job.user
                let info = try await guests.start(request)
                state.guest = info.name
                // Where `runner-hook` sends this job's steps (straight to the relay).
                state.relay = policy.layout.guestRelaySocket(info.name)
                if let uid = info.stepUID, uid != 0 {
                    Self.warnWorkspaceUser(uid: uid, image: input.args.container?.image ?? job.image)
                }
                // docker's order: the image's Env, then the container's own environment.
                state.environment = StepEnvironment.container(
                    image: info.imageEnvironment ?? [], container: job.environment)
                response.isAlpine = info.isAlpine
                response.context?.container = HookResponse.Container(
                    id: info.name, network: info.address == nil ? "host" : "job")
            }
            response.state = state
            try writeResponse(response, to: responseFile)
        } catch {
            // Nothing half-prepared stays behind.
            for name in [state.guest].compactMap({ $0 }) + state.services {
                try? await guests.stop(name)
            }
            throw error
        }
    }

    /// The job container, checked: its local image, binds (missing sources created) and environment.
    struct JobPlan {
        var image: String
        var binds: [GuestBind]
        var environment: [String: String]
        /// `--cap-add` the admin allowed: the step units keep them.
        var capabilities: [String] = []
        /// `--memory`, `--cpus`.
        var limits = GuestLimits()
        /// `--user`: who the steps run as in an image without systemd.
        var user: String?
    }

    func jobPlan(_ container: HookContainer) async throws(RunnerError) -> JobPlan {
        let image = try await resolveImage(container.image, credentials: container.registry)
        let label = container.image ?? image
        let options = try CreateOptions.parse(
            container.createOptions, owner: "job container \(label)", allowedCapabilities: settings.capAdd)
        warnIgnored(options.ignored, owner: "the job container \(label)")
        if options.health != nil {
            warnIgnored(["--health-cmd"], owner: "the job container \(label) (health checks apply to services)")
        }
        if !container.portMappings.isEmpty {
            warnIgnored(
                container.portMappings.map { "ports: \($0)" },
                owner: settings.privateNetwork
                    ? "the job container \(label) (publish ports from a service)"
                    : "the job container \(label) (it shares the host's network: its ports are the host's)")
        }
        let binds = try self.binds(container.systemMountVolumes + container.userMountVolumes)
        var environment = options.environment
        for (key, value) in container.environmentVariables { environment[key] = value }
        environment["GITHUB_ACTIONS"] = "true"
        if environment["CI"] == nil { environment["CI"] = "true" }
        return JobPlan(
            image: image, binds: binds, environment: environment, capabilities: options.capabilities,
            limits: options.limits, user: options.user)
    }

    /// One service, checked: its local image, ports, environment and options.
    struct ServicePlan {
        var service: HookContainer
        /// How messages name it: the workflow's image reference.
        var label: String
        var image: String
        var ports: [PortMapping]
        var environment: [String: String]
        var health: HealthCheck?
        /// `--cap-add` the admin allowed: its health checks keep them.
        var capabilities: [String] = []
        /// `--memory`, `--cpus`.
        var limits = GuestLimits()
        /// `--user`: who its main process runs as in an image without systemd.
        var user: String?
    }

    func servicePlan(_ service: HookContainer) async throws(RunnerError) -> ServicePlan {
        let image = try await resolveImage(service.image, credentials: service.registry)
        let label = service.image ?? image
        var ports: [PortMapping] = []
        for mapping in service.portMappings {
            do {
                ports.append(try PortMapping.parse(mapping))
            } catch {
                throw RunnerError(
                    error.code, input: "service \(label) ports: \(error.input)", problem: error.problem, fix: error.fix)
            }
        }
        for port in ports where port.hostAddress != nil && !port.needsProxy && !settings.privateNetwork {
            warnIgnored(
                ["ports: \(port.hostAddress ?? ""):\(port.hostPort):\(port.containerPort)"],
                owner: "service \(label) (its own port is the host's: the service chooses its bind address)")
        }
        let options = try CreateOptions.parse(
            service.createOptions, owner: "service \(label)", allowedCapabilities: settings.capAdd)
        warnIgnored(options.ignored, owner: "service \(label)")
        var environment = options.environment
        for (key, value) in service.environmentVariables { environment[key] = value }
        let skipped = ServiceEnvironment.dropIn(environment).skipped
        warnIgnored(skipped.map { "env \($0)" }, owner: "service \(label) (not a NAME systemd can carry)")
        return ServicePlan(
            service: service, label: label, image: image, ports: ports, environment: environment,
            health: options.health, capabilities: options.capabilities, limits: options.limits, user: options.user)
    }

    /// `::warning::` that steps run as a non-root image user: the workspace binds (`/__w`, the
    /// runner's temp, tool cache) map the runner user to guest root, so that user can read
    /// them but not create files there. docker's hook has the same limit (the runner user's
    /// UID differs from the image's); the fix is the same: `options: --user root`.
    static func warnWorkspaceUser(uid: UInt32, image: String) {
        StandardOutput.write(
            "::warning::\(escapeWorkflowCommand(image)): steps run as its USER (uid \(uid)), which can read the "
                + "workspace (/__w) but not create files in it (it belongs to the container's root); "
                + "if a step writes there (actions/checkout does), add options: --user root to the container\n")
    }

    /// `::warning::` lines for options this runner does not apply; the job goes on.
    func warnIgnored(_ items: [String], owner: String) {
        for item in items {
            StandardOutput.write(
                "::warning::\(Self.escapeWorkflowCommand(item)) is ignored for \(owner) on this runner\n")
        }
    }

    /// Readiness, bounded: every mapped TCP port accepts on the service's own port and, through
    /// the proxy, on the host port the workflow uses; then the health check passes.
    func waitUntilReady(_ plan: ServicePlan, guest: String, address: String? = nil) async throws(RunnerError) {
        let deadline = MonotonicClock.now() + settings.serviceReadyTimeout
        func timedOut(_ what: String) -> RunnerError {
            RunnerError(
                .timeout, input: "service \(plan.label)",
                problem: "\(what) within \(Int(settings.serviceReadyTimeout)) s",
                fix: "check that the image starts a service listening on that port at boot")
        }
        for port in plan.ports where !port.udp {
            // The service's own port: on the host's loopback (shared network) or its address.
            while await !Self.accepts(address: address, port: port.containerPort) {
                if MonotonicClock.now() > deadline {
                    throw timedOut("did not accept connections on port \(port.containerPort)")
                }
                await MonotonicClock.pause(.milliseconds(20))
            }
            // On a private network every published port is DNATed: check the path the workflow uses.
            guard port.needsProxy || address != nil else { continue }
            // The socket-activated proxy accepts at once; it closes at once while the backend
            // refuses. Open means the path the workflow uses works. (The probe watches the
            // connection with a blocking poll: on a thread of its own.)
            while await DedicatedThread.run({
                TCPSocket.probe(address: port.hostAddress, port: port.hostPort, wait: 0.25)
            }) != .open {
                if MonotonicClock.now() > deadline {
                    throw timedOut("was not reachable on host port \(port.hostPort) (→ \(port.containerPort))")
                }
                await MonotonicClock.pause(.milliseconds(50))
            }
        }
        if let health = plan.health {
            try await runHealthCheck(health, plan: plan, guest: guest)
        }
    }

    /// Whether something accepts TCP connections on `port` of 127.0.0.1 (nil) or `address`.
    static func accepts(address: String?, port: UInt16) async -> Bool {
        guard let address else { return TCPSocket.accepts(port: port) }
        return await DedicatedThread.run { TCPSocket.probe(address: address, port: port, wait: 0) != .refused }
    }

    /// docker's health check semantics, bounded: `/bin/sh -c CMD` until it exits 0; failures in
    /// the start period do not count; `retries` further failures (at `interval`) are fatal.
    func runHealthCheck(_ health: HealthCheck, plan: ServicePlan, guest: String) async throws(RunnerError) {
        let started = MonotonicClock.now()
        var failures = 0
        var last = ""
        while true {
            let result = try await guests.probe(
                guest, command: ["/bin/sh", "-c", health.command], timeout: health.timeout)
            if result.status.isSuccess { return }
            last = (result.standardOutput + result.standardError).trimmedWhitespace
            if MonotonicClock.now() - started >= health.startPeriod { failures += 1 }
            if failures >= max(health.retries, 1) || MonotonicClock.now() - started > health.bound {
                let tail = last.split(separator: "\n").suffix(5).joined(separator: "\n")
                throw RunnerError(
                    .commandFailed, input: "service \(plan.label)",
                    problem: "health check `\(health.command)` failed \(failures) times (\(result.status))"
                        + (tail.isEmpty ? "" : "; last output:\n\(tail)"),
                    fix: "check the service's options: --health-cmd, or give it more time with "
                        + "--health-retries/--health-interval/--health-start-period")
            }
            await MonotonicClock.pause(seconds: health.interval)
        }
    }

    /// The image a guest starts from for a workflow reference: a local image or alias first
    /// (``resolveLocalImage(_:)``), else the registry image unpacked in the content store, else
    /// a pull (inside a `::group::` of the job log; a failure names the reference and the
    /// registry's answer), as `RUNNER_IMAGE_PULL` says: `missing` asks the store then pulls,
    /// `always` pulls (the registry is asked; unchanged layers are not downloaded again),
    /// `never` asks the store only and fails naming the reference when it is not there.
    /// Registry images are named by their manifest digest (`sha256:…`).
    func resolveImage(_ reference: String?, credentials: JobRegistryCredentials?) async throws(RunnerError) -> String {
        let local: RunnerError
        do {
            return try resolveLocalImage(reference)
        } catch {
            local = error
        }
        guard let ref = Self.registryReference(reference) else { throw local }
        if settings.imagePull != .always {
            let found: PulledRegistryImage?
            do {
                found = try await registry.lookup(ref)
            } catch {
                throw RunnerError(
                    error.code, input: ref,
                    problem: "is neither a local image (\(local.problem)) nor looked up in the registry image "
                        + "store: \(error.input): \(error.problem)",
                    fix: error.fix ?? local.fix)
            }
            if let cached = found {
                StandardOutput.write("\(ref): \(cached.digest) (in the image store)\n")
                return cached.digest
            }
            guard settings.imagePull != .never else {
                throw RunnerError(
                    .notFound, input: ref,
                    problem: "is neither a local image (\(local.problem)) nor in the registry image store, "
                        + "and RUNNER_IMAGE_PULL=never forbids pulling it",
                    fix: "ask the administrator to pull it on the runner (runner-agent image pull \(ref)), "
                        + "or to set RUNNER_IMAGE_PULL=missing")
            }
        }
        StandardOutput.write("::group::Pulling \(Self.escapeWorkflowCommand(ref))\n")
        defer { StandardOutput.write("::endgroup::\n") }
        let pulled: PulledRegistryImage
        do {
            pulled = try await registry.pull(ref, credentials: credentials) { line in
                StandardOutput.write(line + "\n")
            }
        } catch {
            throw RunnerError(
                error.code, input: ref,
                problem: "is neither a local image (\(local.problem)) nor pulled from its registry: \(error.problem)",
                fix: error.fix ?? local.fix)
        }
        StandardOutput.write("\(ref): \(pulled.digest)\n")
        return pulled.digest
    }

    /// A workflow image reference as the registry path looks it up (`docker://` dropped), or
    /// nil when it cannot be one (empty, whitespace, not ASCII).
    static func registryReference(_ reference: String?) -> String? {
        var ref = reference ?? ""
        if ref.hasPrefix("docker://") { ref = String(ref.dropFirst(9)) }
        guard !ref.isEmpty, !ref.contains(where: { $0.isWhitespace || !$0.isASCII }) else { return nil }
        return ref
    }

    /// Finds the local image for a workflow image reference (`name`, `name:tag`, a registry path,
    /// or an alias from `RUNNER_IMAGE_ALIASES`).
    func resolveLocalImage(_ reference: String?) throws(RunnerError) -> String {
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
            if !FilePaths.exists(source) { try createMissingSource(source) }
            binds.append(GuestBind(source: source, target: target, readOnly: mount.readOnly))
        }
        return binds
    }

    /// Creates a missing bind source inside an allowed root, one directory at a time from the
    /// root's trusted descriptor without following links (the hook runs as root in tests and
    /// the bench); a source outside every root is left for the helper to refuse.
    private func createMissingSource(_ source: String) throws(RunnerError) {
        let parts = source.split(separator: "/")
        guard !parts.contains(".."), !parts.contains(".") else { return }
        let path = GuestPolicy.normalized(source)
        for root in policy.allowedMountRoots {
            let root = GuestPolicy.normalized(root)
            guard let relative = GuestPolicy.relative(path, to: root) else { continue }
            guard let anchor = try? TrustedPath.openAnchor(root, layout: policy.layout) else { return }
            try TrustedPath.createDirectories(relative, beneath: anchor)
            return
        }
    }

    /// `error` with the last lines of the service's own log (a no-init service's output), so the
    /// job log shows why it failed.
    func withServiceLog(_ error: RunnerError, guest: String) async -> RunnerError {
        let log = await guests.log(guest, lines: 20)
        guard !log.isEmpty else { return error }
        return RunnerError(
            error.code, input: error.input, problem: error.problem + "; the service's log ends:\n" + log,
            fix: error.fix)
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

    func writeResponse(_ response: HookResponse, to path: String) throws(RunnerError) {
        // 0600: the state holds the job container's env, which may carry secrets. The hook runs
        // as the runner user, who reads the file. Not synced to disk: the runner reads it as soon
        // as the hook exits, and a host that crashes first has lost the job anyway.
        try AtomicFile.write(
            try response.encoded(), to: path, mode: 0o600, createDirectories: false, durable: false)
    }

    // MARK: run_script_step

    func runScriptStep(_ input: HookInput) async throws(RunnerError) -> Int32 {
        let (guest, step) = try HookStep.request(input)
        let status = try await guests.exec(
            guest, command: step.command, environment: step.environment, workingDirectory: step.workingDirectory)
        return status.shellCode
    }

    // MARK: cleanup_job

    func cleanupJob(_ input: HookInput) async {
        if let state = input.state {
            // All of the job's guests at once: they shut down together, the network with them.
            let names = [state.guest].compactMap({ $0 }) + state.services
            do {
                try await guests.stop(names)
            } catch {
                logger.warning(
                    "could not stop the job's guests", metadata: ["guests": "\(names)", "error": "\(error)"])
            }
        } else {
            // prepare_job failed or was killed before it saved a state: remove every guest of
            // this job (same owner) and whatever else is stale.
            await guests.sweep(owner: ownerPID, network: .full)
        }
    }
}
