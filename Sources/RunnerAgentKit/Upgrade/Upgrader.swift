import Logging
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent upgrade` and `runner-agent rollback`: moves a host between releases between
/// jobs, keeping the release it left as `previous`.
///
/// An upgrade fetches the bundle (a URL into the cache through ``Curl``, a file as is), checks its
/// sha256, unpacks it beside the running release (`releases/<version>`, with the installer's safe
/// extraction and manifest check), and runs the new agent's `--version`: all while the old
/// release keeps running. Then it drains (`systemctl stop runner.service`: the agent lets a
/// running job finish for up to 240 s, then interrupts the runner; `TimeoutStopSec=300` bounds
/// the stop), points `previous` at the old release and `current` at the new one, runs the
/// installer's `host-files` step (and `runner-package` when the new release pins another runner),
/// rewrites the install marker, reloads systemd, starts `runner.service` and waits for it to be
/// active and to stay so. Any failure after the drain switches both links back, converges the
/// host files to the old release and starts it again; the error says what failed and that the
/// old release runs. Releases other than `current` and `previous` are removed after a success.
/// `rollback` makes the same move to `previous`.
///
/// Every path comes from ``layout`` and every command goes through ``commandRunner``, so tests run
/// it on a temporary root with a recording runner.
public struct Upgrader: Sendable {
    /// Time bounds of the restart check.
    public struct Timing: Sendable {
        /// How long `runner.service` may take to become active after its start.
        public var startTimeout: Duration = .seconds(90)
        /// How long it must then stay active without a restart to count as up.
        public var settle: Duration = .seconds(10)
        /// How often its state is read.
        public var poll: Duration = .milliseconds(500)

        public init() {}
    }

    /// What a successful move did.
    public struct Outcome: Sendable, Hashable {
        /// The release that ran before.
        public var from: String
        /// The release that runs now.
        public var to: String
        /// What `previous` names now.
        public var previous: String?
        /// Release directories removed (neither `current` nor `previous`).
        public var pruned: [String]
    }

    /// The unit that runs the runner.
    static let unit = "runner.service"

    public var layout: HostLayout
    /// The validated `config.env`.
    public var config: RunnerConfig
    public var commandRunner: any CommandRunner
    public var logger: Logger
    public var curl: Curl
    /// The `systemctl` that stops and starts runner.service.
    public var systemctl = Systemctl()
    public var timing: Timing
    /// Where progress lines go (stdout).
    public var print: @Sendable (String) -> Void

    public init(
        layout: HostLayout, config: RunnerConfig, commandRunner: any CommandRunner, logger: Logger,
        curl: Curl = Curl(), timing: Timing = Timing(), print: @escaping @Sendable (String) -> Void
    ) {
        self.layout = layout
        self.config = config
        self.commandRunner = commandRunner
        self.logger = logger
        self.curl = curl
        self.timing = timing
        self.print = print
    }

    var releases: ReleaseSwitch { ReleaseSwitch(layout: layout) }

    // MARK: upgrade

    /// Upgrades to the release in `bundle` (a path, or an `http(s)://` URL) whose file has
    /// `sha256`. Returns with `from == to` when that release already runs.
    public func upgrade(bundle: String, sha256: String) async throws(RunnerError) -> Outcome {
        guard SHA256Digest.isValidHex(sha256) else {
            throw RunnerError(
                .invalidInput, input: "--sha256 \(sha256)", problem: "is not 64 hex digits",
                fix: "pass the bundle's digest from SHA256SUMS")
        }
        let lock = try AdminLock.acquire("upgrade", layout: layout)
        defer { withExtendedLifetime(lock) {} }
        let before = try installedLinks()
        let file = try await fetch(bundle, sha256: sha256.lowercased())
        let manifest = try BundleUnpacker.peekManifest(file)
        let version = manifest.bundleVersion.description
        guard manifest.arch == .host else {
            throw RunnerError(
                .unsupported, input: file,
                problem: "is built for \(manifest.arch.rawValue), this host is \(BundleArch.host.rawValue)",
                fix: "use the runner-bundle-\(version)-linux-\(BundleArch.host.rawValue).tar.gz of the release")
        }
        if version == before.current {
            let directory = layout.releaseDirectory(version)
            let installed = (try? FilePaths.read(directory + "/" + BundleManifest.fileName)).flatMap {
                try? BundleManifest.decode($0, source: directory)
            }
            guard installed == manifest else {
                throw RunnerError(
                    .alreadyExists, input: file,
                    problem: "is release \(version), which runs here with other content",
                    fix: "give the new build a new version (runner-build bundle --version)")
            }
            print("upgrade: \(version) already runs; nothing to do")
            return Outcome(from: version, to: version, previous: before.previous, pruned: [])
        }
        let existed = releases.hasRelease(version)
        print("unpack: \(version) into \(layout.releaseDirectory(version))")
        _ = try BundleUnpacker(layout: layout).installRelease(bundle: file, expectedSHA256: nil)
        do throws(RunnerError) {
            try await prepare(version)
        } catch {
            if !existed { try? FilePaths.remove(layout.releaseDirectory(version)) }
            throw error
        }
        do throws(RunnerError) {
            try await move(from: before, to: ReleaseSwitch.Links(current: version, previous: before.current))
        } catch {
            if !existed && releases.current != version && releases.previous != version {
                try? FilePaths.remove(layout.releaseDirectory(version))
            }
            throw error
        }
        let pruned = releases.prune()
        if !pruned.isEmpty { print("prune: removed \(pruned.joined(separator: ", "))") }
        print("upgrade: \(before.current) → \(version); runner.service is active; previous: \(before.current)")
        return Outcome(from: before.current, to: version, previous: before.current, pruned: pruned)
    }

    // MARK: rollback

    /// Returns to the release `previous` names; the release left becomes `previous`.
    public func rollback() async throws(RunnerError) -> Outcome {
        let lock = try AdminLock.acquire("rollback", layout: layout)
        defer { withExtendedLifetime(lock) {} }
        let before = try installedLinks()
        guard let previous = before.previous else {
            throw RunnerError(
                .notFound, input: layout.previousRelease, problem: "names no release to roll back to",
                fix: "rollback returns to the release an upgrade replaced; install another with runner-agent upgrade")
        }
        try await prepare(previous)
        try await move(from: before, to: ReleaseSwitch.Links(current: previous, previous: before.current))
        print("rollback: \(before.current) → \(previous); runner.service is active; previous: \(before.current)")
        return Outcome(from: before.current, to: previous, previous: before.current, pruned: [])
    }

    // MARK: steps

    /// The links of an installed host; refuses a host the installer has not finished.
    func installedLinks() throws(RunnerError) -> ReleaseSwitch.Links {
        guard FilePaths.exists(layout.installedMarker), let links = releases.links else {
            throw RunnerError(
                .notFound, input: layout.installedMarker,
                problem: "this host is not installed (no install marker, or current names no release)",
                fix: "install it first: runner-agent install --bundle runner-bundle-<version>-linux-<arch>.tar.gz")
        }
        return links
    }

    /// The bundle as a local file whose sha256 is checked: a URL downloaded into the cache, a
    /// file as it is.
    func fetch(_ bundle: String, sha256: String) async throws(RunnerError) -> String {
        guard bundle.hasPrefix("https://") || bundle.hasPrefix("http://") else {
            try BundleVerifier.requireReadable(bundle)
            try BundleVerifier.checkDigest(of: bundle, expected: sha256)
            return bundle
        }
        let name = Self.cacheName(for: bundle)
        let path = layout.cacheDirectory + "/" + name
        print("fetch: \(bundle)")
        let download = CachedDownload(layout: layout, curl: curl, commandRunner: commandRunner, logger: logger)
        try await download.fetch(bundle, to: path, sha256: sha256)
        return path
    }

    /// The cache file name for a bundle URL: its last path component when that is a plain file
    /// name, else a fixed one.
    static func cacheName(for url: String) -> String {
        let path = url.prefix { $0 != "?" && $0 != "#" }
        let name = FilePaths.basename(String(path))
        let plain =
            !name.isEmpty && !name.hasPrefix(".") && name.count <= 200
            && name.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || "0123456789._-".unicodeScalars.contains($0))
            }
        return plain ? name : "runner-bundle-download.tar.gz"
    }

    /// The installer for the release `version`: config.env with the runner that release pins.
    func installer(for version: String) throws(RunnerError) -> Installer {
        let pinned = RunnerPackagePin.ofRelease(layout.releaseDirectory(version))
        let settings = try InstallSettings(config, pinned: pinned)
        return Installer(
            layout: layout, settings: settings, bundle: nil, commandRunner: commandRunner, logger: logger, curl: curl)
    }

    /// What can be done while the old release still runs: config.env checked against the
    /// release, its agent run once (`--version`), and the runner tarball it pins downloaded
    /// when the installed runner package is another one.
    func prepare(_ version: String) async throws(RunnerError) {
        let installer = try installer(for: version)
        let agent = AgentBinary(path: layout.releaseDirectory(version) + "/" + BundleLayout.agentPath)
        let command = agent.version()
        let result = try await commandRunner.run(command)
        guard result.status.isSuccess else {
            throw RunnerError(
                .commandFailed, input: agent.path,
                problem: "the agent of \(version) does not run on this host (\(command.description): \(result.status)"
                    + (result.standardError.isEmpty ? ")" : ": \(result.standardError.trimmedWhitespace))"),
                fix:
                    "nothing was changed: \(releases.current ?? "the old release") still runs; use a bundle built for this host"
            )
        }
        print("check: the agent of \(version) runs (\(result.standardOutput.trimmedWhitespace))")
        if try await !installer.packageStep.isDone() {
            print("fetch: GitHub runner \(installer.settings.runnerVersion), which \(version) pins")
            try await installer.download(
                installer.settings.tarballURL, to: installer.cachedTarball, sha256: installer.settings.tarballSHA256)
        }
    }

    /// Drains runner.service, switches to `target`, converges the host files and starts the
    /// service; on a failure after the drain, returns to `before` and starts that again.
    func move(from before: ReleaseSwitch.Links, to target: ReleaseSwitch.Links) async throws(RunnerError) {
        print(
            "drain: stopping \(Self.unit); a running job may finish first (up to \(ServiceTiming().jobGrace),"
                + " then the runner is interrupted)")
        let stop = systemctl.stop(Self.unit, .init(block: true))
        do throws(RunnerError) {
            try await commandRunner.run(stop).checked(stop)
        } catch {
            // The old release is still current: make sure it runs again.
            _ = try? await commandRunner.run(systemctl.start(Self.unit))
            throw error
        }
        do throws(RunnerError) {
            try await activate(target)
        } catch {
            print("failed: \(error.input): \(error.problem)")
            print("returning to \(before.current)")
            do throws(RunnerError) {
                _ = try await commandRunner.run(stop)
                try await activate(before)
            } catch let rollbackError {
                throw RunnerError(
                    error.code, input: error.input,
                    problem: "\(error.problem); returning to \(before.current) failed too: "
                        + "\(rollbackError.input): \(rollbackError.problem)",
                    fix: "runner.service may be down: see `systemctl status runner.service` and"
                        + " `journalctl -u runner.service`, then run runner-agent install")
            }
            throw RunnerError(
                error.code, input: error.input,
                problem: "\(error.problem); \(before.current) runs again, \(target.current) is not current",
                fix: error.fix ?? "see `journalctl -u runner.service` for why \(target.current) did not start")
        }
    }

    /// Points the links at `links`, converges what names the release, starts runner.service
    /// and waits until it is up.
    func activate(_ links: ReleaseSwitch.Links) async throws(RunnerError) {
        // The links first: a release config.env no longer suits is still switched back to.
        try releases.point(links)
        let installer = try installer(for: links.current)
        print(
            "switch: current → releases/\(links.current), previous → \(links.previous.map { "releases/" + $0 } ?? "none")"
        )
        var steps = [installer.hostFilesStep]
        if try await !installer.packageStep.isDone() { steps += [installer.packageStep, installer.mountsStep] }
        steps.append(installer.markerStep)
        try await StepRunner(logger: logger, print: print).run(steps, dryRun: false)
        let reload = systemctl.daemonReload()
        try await commandRunner.run(reload).checked(reload)
        let start = systemctl.start(Self.unit)
        try await commandRunner.run(start).checked(
            start, fix: "see `journalctl -u runner.service` for why \(links.current) did not start")
        try await waitUntilUp(links.current)
    }

    /// Waits (bounded by ``Timing/startTimeout``) until runner.service is active, then requires
    /// it to stay active, without a restart, for ``Timing/settle``.
    func waitUntilUp(_ version: String) async throws(RunnerError) {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timing.startTimeout)
        var activeSince: ContinuousClock.Instant?
        var restarts: String?
        while true {
            let state = try await serviceState()
            let active = state["ActiveState"] ?? "unknown"
            let description = "\(active) (\(state["SubState"] ?? "?"))"
            if active == "active" {
                if activeSince == nil {
                    activeSince = clock.now
                    restarts = state["NRestarts"]
                } else if state["NRestarts"] != restarts {
                    throw notUp(version, "restarted after it had started")
                }
                if let activeSince, clock.now - activeSince >= timing.settle {
                    print("up: \(Self.unit) is \(description) on \(version)")
                    return
                }
            } else if activeSince != nil {
                throw notUp(version, "was active, then \(description)")
            } else if active == "failed" || active == "inactive" {
                throw notUp(version, "is \(description) after its start")
            }
            if clock.now >= deadline {
                throw notUp(version, "is \(description), not active, \(timing.startTimeout) after its start")
            }
            try? await Task.sleep(for: timing.poll)
        }
    }

    func notUp(_ version: String, _ problem: String) -> RunnerError {
        RunnerError(
            .timeout, input: Self.unit, problem: "\(problem) (release \(version))",
            fix: "see `journalctl -u runner.service` for why \(version) did not come up")
    }

    /// `ActiveState`, `SubState` and `NRestarts` of runner.service.
    func serviceState() async throws(RunnerError) -> [String: String] {
        let show = systemctl.show(Self.unit, properties: ["ActiveState", "SubState", "NRestarts"])
        let output = try await commandRunner.output(show)
        var state: [String: String] = [:]
        for line in output.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            state[String(line[..<eq])] = String(line[line.index(after: eq)...]).trimmedWhitespace
        }
        return state
    }
}
