import FoundationEssentials
import Logging
import RunnerArchive
import RunnerCore
import RunnerGuests
import RunnerImages
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent doctor`: one line per check (ok / problem), with how to fix each problem.
public struct Doctor: Sendable {
    /// One finding.
    public struct Finding: Sendable, Hashable {
        /// `warning`: works, but weaker than it should be (does not fail the doctor).
        public enum Status: String, Sendable { case ok, warning, problem, skipped }
        public var check: String
        public var status: Status
        public var detail: String
        public var fix: String?

        /// `ok       check: detail` (and an indented `fix:` line for problems).
        public var rendered: String {
            var line = "\(status.rawValue.padding(8)) \(check): \(detail)"
            if let fix, status == .problem || status == .warning { line += "\n         fix: \(fix)" }
            return line
        }
    }

    public var layout: HostLayout
    public var commandRunner: any CommandRunner
    public var config: String?
    /// Whether to boot the default image with nspawn (the slowest check).
    public var bootCheck: Bool
    /// Where `/proc` is (tests point it at a fake `sys/user/max_user_namespaces`).
    public var procRoot = "/proc"
    /// Whether PID 1 is systemd (nil: look at `/run/systemd/system`).
    public var systemdIsPID1: Bool?
    /// Per-probe cgroups for the boot check on a host without systemd as PID 1.
    public var cgroups = GuestCgroups()
    /// The mount table to check (`/proc/self/mountinfo` text); nil: this process's, on the
    /// host root only.
    public var mountInfo: String?

    public init(layout: HostLayout, commandRunner: any CommandRunner, config: String? = nil, bootCheck: Bool = true) {
        self.layout = layout
        self.commandRunner = commandRunner
        self.config = config
        self.bootCheck = bootCheck
    }

    /// Runs every check, in order.
    public func run() async -> [Finding] {
        var findings: [Finding] = []
        let configPath = config ?? layout.configFile
        var install: InstallSettings?
        var service: ServiceSettings?
        var userns: Bool?
        var network: GuestNetworkPolicy??
        do throws(RunnerError) {
            let config = try ConfigEnv.load(configPath, layout: layout, for: .service)
            userns = config.guestUserNamespace
            network = HookSettings(config, layout: layout).guestPolicy(layout: layout, backend: .direct).network
            install = try InstallSettings(config, pinned: RunnerPackagePin.ofRelease(layout.currentRelease))
            service = try ServiceSettings(config, layout: layout)
            findings.append(Doctor.configFinding(configPath, warnings: config.warnings))
        } catch {
            findings.append(
                Finding(check: "config", status: .problem, detail: "\(error.input): \(error.problem)", fix: error.fix))
        }
        findings.append(await marker())
        findings.append(release())
        findings.append(libarchive())
        findings.append(units())
        findings.append(runnerPackage(install))
        findings.append(configured(service))
        findings.append(images(install))
        findings.append(mounts(install))
        findings.append(await sudoers(install))
        findings.append(userNamespace(userns))
        findings.append(await guestNetwork(network))
        findings.append(await boot(install))
        return findings
    }

    /// A valid config: ok, or a warning listing what systemd reads but was probably not meant.
    static func configFinding(_ path: String, warnings: [ConfigProblem]) -> Finding {
        guard !warnings.isEmpty else { return Finding(check: "config", status: .ok, detail: "\(path) is valid") }
        return Finding(
            check: "config", status: .warning,
            detail: "\(path) is valid, but: " + warnings.map { $0.located(in: path) }.joined(separator: "; "),
            fix: "edit \(path) as each warning says, then systemctl restart runner.service")
    }

    func marker() async -> Finding {
        guard let bytes = try? FilePaths.read(layout.installedMarker) else {
            return await unfinishedInstall()
        }
        let text = String(decoding: bytes, as: UTF8.self).split(separator: "\n").joined(separator: ", ")
        return Finding(check: "marker", status: .ok, detail: "installed (\(text))")
    }

    /// The install has not finished: what runner-install.service says about it, when systemd
    /// runs. Exit 78 (EX_CONFIG) is a configuration error the unit does not retry
    /// (`RestartPreventExitStatus=78`); any other failure is retried every 30 s.
    func unfinishedInstall() async -> Finding {
        let missing = "\(layout.installedMarker) is missing: the install has not finished"
        let generic = Finding(
            check: "marker", status: .problem, detail: missing,
            fix: "run runner-agent install (or: systemctl restart runner-install.service) and read its log")
        guard systemdIsPID1 ?? FilePaths.exists(layout.path("/run/systemd/system")) else { return generic }
        let unit = "runner-install.service"
        let show = Systemctl().show(unit, properties: ["ExecMainStatus", "ActiveState", "Result"])
        guard let result = try? await commandRunner.run(show), result.status.isSuccess else { return generic }
        var properties: [String: String] = [:]
        for line in result.standardOutput.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            properties[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        guard let status = properties["ExecMainStatus"].flatMap({ Int($0) }), status != 0 else { return generic }
        let cause = await lastError(of: unit).map { ": \($0)" } ?? ""
        if status == 78 {
            return Finding(
                check: "marker", status: .problem,
                detail: "\(missing): \(unit) failed with exit status 78 (EX_CONFIG), a configuration error, and"
                    + " does not retry it\(cause)",
                fix: "correct \(config ?? layout.configFile) (`runner-agent config check` lists every problem), then"
                    + " systemctl restart \(unit)")
        }
        return Finding(
            check: "marker", status: .problem,
            detail: "\(missing): the last attempt of \(unit) exited \(status); it retries every 30 s\(cause)",
            fix: "journalctl -u \(unit) for its whole log (network, proxy, release URL and digest)")
    }

    /// The last error line (`bootstrap: error: …`, `runner-agent: error: …`) in the unit's log.
    func lastError(of unit: String) async -> String? {
        let read = Journalctl().lastLines(unit: unit, count: 50)
        guard let result = try? await commandRunner.run(read), result.status.isSuccess else { return nil }
        guard let line = result.standardOutput.split(separator: "\n").last(where: { $0.contains("error:") }) else {
            return nil
        }
        let text = String(line).trimmedWhitespace
        return text.count > 400 ? String(text.prefix(400)) + "…" : text
    }

    func release() -> Finding {
        let reinstall = "run runner-agent install --bundle <the release bundle> to unpack it again"
        guard let target = SymbolicLink.target(layout.currentRelease) else {
            return Finding(
                check: "release", status: .problem, detail: "\(layout.currentRelease) is missing", fix: reinstall)
        }
        let directory = layout.releaseDirectory(FilePaths.basename(target))
        do throws(RunnerError) {
            let manifest = try BundleVerifier.checkTree(directory, bundle: directory)
            let digest = (try? SHA256Digest.hex(ofFile: directory + "/MANIFEST.json")) ?? "?"
            return Finding(
                check: "release", status: .ok,
                detail:
                    "\(manifest.bundleVersion): \(manifest.files.count) files match MANIFEST.json (sha256 \(digest.prefix(12)))"
            )
        } catch {
            return Finding(
                check: "release", status: .problem, detail: "\(error.input): \(error.problem)", fix: reinstall)
        }
    }

    /// libarchive, which the agent opens only when it first reads or writes an archive (image
    /// pulls and imports, bundles): checked here, so a host without it hears before a job does.
    func libarchive() -> Finding {
        do throws(ArchiveError) {
            try ArchiveLibrary.load()
            return Doctor.libarchiveFinding(.success(libarchiveVersion))
        } catch {
            return Doctor.libarchiveFinding(.failure(error))
        }
    }

    /// The `libarchive` finding for a load's outcome: the library's version, or why it did not load.
    static func libarchiveFinding(_ outcome: Result<String, ArchiveError>) -> Finding {
        switch outcome {
        case .success(let version):
            return Finding(check: "libarchive", status: .ok, detail: version)
        case .failure(let error):
            return Finding(
                check: "libarchive", status: .problem, detail: "\(error.input): \(error.problem)", fix: error.fix)
        }
    }

    func units() -> Finding {
        let fix = "run runner-agent install (it installs and enables runner.service)"
        for name in ["runner.service", "runner-install.service"] {
            let installed = try? FilePaths.read(layout.systemdUnitDirectory + "/" + name)
            let shipped = try? FilePaths.read(layout.currentRelease + "/" + name)
            guard let installed, installed == shipped else {
                return Finding(
                    check: "units", status: .problem,
                    detail: "\(layout.systemdUnitDirectory)/\(name) is missing or differs from the release's", fix: fix)
            }
        }
        let wants = layout.systemdUnitDirectory + "/multi-user.target.wants/runner.service"
        guard SymbolicLink.target(wants) == Installer.hostUnitPath else {
            return Finding(check: "units", status: .problem, detail: "runner.service is not enabled", fix: fix)
        }
        return Finding(
            check: "units", status: .ok,
            detail: "runner.service and runner-install.service installed; runner.service enabled")
    }

    func runnerPackage(_ settings: InstallSettings?) -> Finding {
        let fix = "run runner-agent install (it downloads, checks and unpacks the pinned runner)"
        guard access(layout.runnerDirectory + "/config.sh", X_OK) == 0,
            access(layout.runnerDirectory + "/run.sh", X_OK) == 0
        else {
            return Finding(
                check: "runner-package", status: .problem, detail: "\(layout.runnerDirectory) holds no GitHub runner",
                fix: fix)
        }
        let stamp = (try? FilePaths.read(layout.runnerDirectory + "/.runner-package-sha256"))
            .map { String(decoding: $0, as: UTF8.self).trimmedWhitespace }
        if let settings, stamp != settings.tarballSHA256 {
            return Finding(
                check: "runner-package", status: .problem,
                detail: "\(layout.runnerDirectory) is not the pinned runner \(settings.runnerVersion)", fix: fix)
        }
        return Finding(
            check: "runner-package", status: .ok,
            detail: "GitHub runner \(settings?.runnerVersion ?? "?") in \(layout.runnerDirectory)")
    }

    func configured(_ settings: ServiceSettings?) -> Finding {
        guard let settings else {
            return Finding(check: "runner", status: .skipped, detail: "the configuration is invalid")
        }
        let package = RunnerPackage(directory: layout.runnerDirectory)
        if package.isConfigured {
            return Finding(check: "runner", status: .ok, detail: "configured (\(package.settingsFile))")
        }
        if settings.ephemeral {
            return Finding(
                check: "runner", status: .ok, detail: "ephemeral: registered afresh for each job by runner.service")
        }
        if case .jitConfig = settings.registration {
            return Finding(
                check: "runner", status: .ok, detail: "JIT configuration: registered by runner.service when it starts")
        }
        return Finding(
            check: "runner", status: .problem, detail: "not configured: runner.service has not registered it yet",
            fix: "systemctl restart runner.service, then journalctl -u runner.service for the registration's outcome")
    }

    func images(_ settings: InstallSettings?) -> Finding {
        guard let settings else {
            return Finding(check: "images", status: .skipped, detail: "the configuration is invalid")
        }
        let store = ImageStore(layout: layout)
        for image in settings.images {
            guard let installed = try? store.resolve(image.name) else {
                return Finding(
                    check: "images", status: .problem, detail: "image \(image.name) is not in the image store",
                    fix: "run runner-agent install (it imports RUNNER_IMAGES)")
            }
            guard installed.digest == image.sha256 else {
                return Finding(
                    check: "images", status: .problem,
                    detail:
                        "image \(image.name) is \(installed.digest.prefix(12)), not the pinned \(image.sha256.prefix(12))",
                    fix: "run runner-agent install to import the pinned version")
            }
        }
        guard (try? store.resolve(settings.defaultImage)) != nil else {
            return Finding(
                check: "images", status: .problem,
                detail: "the default image \(settings.defaultImage) is not in the store",
                fix: "add it to RUNNER_IMAGES or change RUNNER_DEFAULT_IMAGE, then run runner-agent install")
        }
        return Finding(
            check: "images", status: .ok,
            detail: "\(settings.images.map(\.name).joined(separator: ", ")) present; default \(settings.defaultImage)")
    }

    /// The work and externals directories lie on nosuid,nodev mounts (the installer's mount units).
    func mounts(_ settings: InstallSettings?) -> Finding {
        guard let settings else {
            return Finding(check: "mounts", status: .skipped, detail: "the configuration is invalid")
        }
        let text: String
        if let mountInfo {
            text = mountInfo
        } else if layout.root == "/", let bytes = try? FilePaths.read("/proc/self/mountinfo") {
            text = String(decoding: bytes, as: UTF8.self)
        } else {
            return Finding(check: "mounts", status: .skipped, detail: "checks the mounts of the host root only")
        }
        let directories = [
            settings.workDirectory, HostLayout().runnerDirectory + "/externals",
        ]
        let missing = directories.filter { !MountUnits.isNosuidNodev($0, mountInfo: text) }
        guard missing.isEmpty else {
            let units = missing.map { MountUnits.unitName(for: $0) }
            return Finding(
                check: "mounts", status: .problem,
                detail: missing.joined(separator: " and ")
                    + " not on a nosuid,nodev mount: a setuid file a job leaves there runs as its owner",
                fix: "run runner-agent install (it writes and enables \(units.joined(separator: ", "))), then "
                    + "systemctl start \(units.joined(separator: " ")); check with findmnt -o TARGET,OPTIONS "
                    + missing.joined(separator: " "))
        }
        return Finding(
            check: "mounts", status: .ok, detail: directories.joined(separator: " and ") + " are mounted nosuid,nodev")
    }

    func sudoers(_ settings: InstallSettings?) async -> Finding {
        guard let user = settings?.user else {
            return Finding(check: "ci-nspawn-run", status: .skipped, detail: "the configuration is invalid")
        }
        let fix = "run runner-agent install (it writes \(layout.sudoersRule))"
        let expected = HostFiles.sudoersRule(user: user)
        guard let bytes = try? FilePaths.read(layout.sudoersRule),
            String(decoding: bytes, as: UTF8.self).split(separator: "\n").contains(where: { $0 == expected })
        else {
            return Finding(
                check: "ci-nspawn-run", status: .problem, detail: "\(layout.sudoersRule) does not let \(user) run it",
                fix: fix)
        }
        let check = Visudo().check(layout.sudoersRule)
        if let result = try? await commandRunner.run(check), !result.status.isSuccess {
            return Finding(
                check: "ci-nspawn-run", status: .problem, detail: "\(layout.sudoersRule) does not parse", fix: fix)
        }
        if layout.root == "/" {
            let list = Sudo().may(user, run: Installer.hostGuestHelper)
            if let result = try? await commandRunner.run(list), !result.status.isSuccess {
                return Finding(
                    check: "ci-nspawn-run", status: .problem,
                    detail: "sudo does not let \(user) run \(Installer.hostGuestHelper)",
                    fix: "check that /etc/sudoers includes /etc/sudoers.d (@includedir)")
            }
            // The helper is the whole of the runner user's root: any other rule is a hole.
            let other = Sudo().may(user, run: "/bin/sh")
            if let result = try? await commandRunner.run(other), result.status.isSuccess {
                return Finding(
                    check: "ci-nspawn-run", status: .problem,
                    detail:
                        "sudo lets \(user) run other commands as root (/bin/sh), not only \(Installer.hostGuestHelper)",
                    fix: "remove the other rules for \(user) (`sudo -l -U \(user)` lists them)")
            }
        }
        return Finding(
            check: "ci-nspawn-run", status: .ok, detail: "\(user) may run \(Installer.hostGuestHelper) as root")
    }

    /// What guests get on this host: user-namespaced (systemd host: a delegated unit; else a
    /// cgroup of their own), or guest root is host root (`RUNNER_GUEST_USERNS=off`: a warning).
    func userNamespace(_ enabled: Bool?) -> Finding {
        let check = "userns"
        guard let enabled else {
            return Finding(check: check, status: .skipped, detail: "the configuration is invalid")
        }
        guard enabled else {
            return Finding(
                check: check, status: .warning,
                detail: "RUNNER_GUEST_USERNS=off: guest root is host root (a job can mount proc and set "
                    + "kernel.core_pattern, leave setuid-root files in binds, remount read-only binds)",
                fix: "set RUNNER_GUEST_USERNS=on in \(layout.configFile) (the default)")
        }
        guard GuestUserNamespace.kernelAllows(procRoot: procRoot) else {
            return Finding(
                check: check, status: .problem,
                detail: "the kernel refuses user namespaces (\(procRoot)/sys/user/max_user_namespaces is 0 or missing)",
                fix: "sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d), or accept guest root as "
                    + "host root with RUNNER_GUEST_USERNS=off")
        }
        let range = GuestUserNamespace.standard
        if systemdIsPID1 ?? FilePaths.exists(layout.path("/run/systemd/system")) {
            return Finding(
                check: check, status: .ok,
                detail: "guests run in a user namespace (guest root is host UID \(range.base), \(range.size) IDs) "
                    + "in a delegated systemd unit")
        }
        guard !cgroups.hierarchies().isEmpty else {
            return Finding(
                check: check, status: .problem,
                detail: "no systemd as PID 1 and no name=systemd or cgroup2 hierarchy under \(cgroups.root)",
                fix: "mount cgroup2 at /sys/fs/cgroup, or set RUNNER_GUEST_USERNS=off")
        }
        return Finding(
            check: check, status: .ok,
            detail: "guests run in a user namespace (guest root is host UID \(range.base), \(range.size) IDs) "
                + "in a cgroup of their own under \(cgroups.root) (no systemd as PID 1)")
    }

    /// The guests' network: the runner's nftables table present and blocking the metadata
    /// addresses and `RUNNER_GUEST_BLOCKED_NETS` (private), or a warning (host).
    func guestNetwork(_ network: GuestNetworkPolicy??) async -> Finding {
        let check = "network"
        guard let network else {
            return Finding(check: check, status: .skipped, detail: "the configuration is invalid")
        }
        guard let network else {
            return Finding(
                check: check, status: .warning,
                detail: "RUNNER_GUEST_NETWORK=host: guests share the host's network (its loopback services, the "
                    + "cloud metadata service, any free host port)",
                fix: "set RUNNER_GUEST_NETWORK=private in \(layout.configFile) (the default)")
        }
        if let problem = await network.checkFilterTable(layout: layout, runner: commandRunner) {
            return Finding(
                check: check, status: .problem, detail: problem,
                fix: "restart runner.service (it sets the table up), or run `ci-nspawn-run gc`; nft must be installed")
        }
        return Finding(
            check: check, status: .ok,
            detail: "a private network per job; nftables table inet \(network.names.table) rejects the metadata "
                + "addresses" + (network.blocked.isEmpty ? "" : " and \(network.blocked.joined(separator: " "))"))
    }

    func boot(_ settings: InstallSettings?) async -> Finding {
        guard bootCheck else {
            return Finding(check: "nspawn", status: .skipped, detail: "not asked (--no-boot-check)")
        }
        guard let settings, let image = try? ImageStore(layout: layout).resolve(settings.defaultImage) else {
            return Finding(check: "nspawn", status: .skipped, detail: "no default image to start")
        }
        let store = ImageStore(layout: layout)
        let shifted = try? ImageOwnership.marker(version: store.versionDirectory(image))
        let command = SystemdNspawn().probe(.init(directory: image.rootfs, userNamespace: shifted ?? nil))
        let direct = !(systemdIsPID1 ?? FilePaths.exists(layout.path("/run/systemd/system")))
        let result: CommandResult
        do throws(RunnerError) {
            if direct, shifted != nil {
                // As the helper does: the booted guest needs a cgroup nspawn can delegate.
                let name = GuestName.generate()
                do {
                    result = try await commandRunner.run(try cgroups.entering(guest: name, command))
                } catch {
                    await cgroups.remove(guest: name)
                    throw error
                }
                await cgroups.remove(guest: name)
            } else {
                result = try await commandRunner.run(command)
            }
        } catch {
            return Finding(
                check: "nspawn", status: .problem,
                detail: "systemd-nspawn could not boot \(settings.defaultImage): \(Doctor.tail(error.problem))",
                fix: "run '\(command)' to see more (is systemd-container installed, is the image complete?)")
        }
        guard result.status.isSuccess else {
            let said = Doctor.tail(result.standardError + "\n" + result.standardOutput)
            return Finding(
                check: "nspawn", status: .problem,
                detail: "systemd-nspawn could not boot \(settings.defaultImage) (\(result.status))"
                    + (said.isEmpty ? "" : ": " + said),
                fix: "run '\(command)' to see more (is systemd-container installed, is the image complete?)")
        }
        return Finding(
            check: "nspawn", status: .ok, detail: "systemd-nspawn boots \(settings.defaultImage) to poweroff")
    }
}

extension Doctor {
    /// The last `lines` non-empty lines of `text` (what nspawn said last: its cause), joined
    /// with " | " and cut to the last `limit` characters so one finding stays one line.
    static func tail(_ text: String, lines: Int = 5, limit: Int = 400) -> String {
        let kept = text.split(whereSeparator: \.isNewline)
            .map { String($0).trimmedWhitespace }
            .filter { !$0.isEmpty }
            .suffix(lines)
            .joined(separator: " | ")
        return kept.count > limit ? "…" + String(kept.suffix(limit)) : kept
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
