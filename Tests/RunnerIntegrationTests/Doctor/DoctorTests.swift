import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerImages
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Real commands, except systemd-nspawn, whose answer the test scripts (the tiny test image
/// cannot run /bin/true; booting real images is the hook's integration suite's job).
struct ScriptedNspawnRunner: CommandRunner {
    let real = SystemCommandRunner()
    let nspawnSucceeds: Bool
    /// Whether `nft -j list table` shows the runner's filter table (the host's is not the test root's).
    var filterTable = true

    func run(_ command: Command, input: [UInt8]?, output: OutputMode) async throws(RunnerError) -> CommandResult {
        if command.executable == "nft" && command.arguments.starts(with: ["-j", "list", "table"]) {
            guard filterTable else {
                return CommandResult(status: .exited(1), standardError: "No such file or directory")
            }
            let elements = GuestNetworkRules.metadataAddresses.map { "\"\($0)\"" }.joined(separator: ", ")
            return CommandResult(
                status: .exited(0),
                standardOutput: #"{"nftables": [{"set": {"name": "blocked", "elem": ["# + elements + "]}}]}")
        }
        // On a host without systemd as PID 1 the probe starts in a cgroup of its own, through
        // the host's shell (GuestCgroups.entering): still nspawn.
        if command.executable == "systemd-nspawn" || command.argv.contains("systemd-nspawn") {
            return CommandResult(status: .exited(nspawnSucceeds ? 0 : 1), standardError: "nspawn: scripted failure")
        }
        return try await real.run(command, input: input, output: output)
    }

    func start(_ command: Command, options: StartOptions) throws(RunnerError) -> any ProcessHandle {
        try real.start(command, options: options)
    }
}

/// Ways to break a healthy install, each with the one check that must report it.
enum Breakage: String, CaseIterable, Sendable {
    case config, marker, release, unit, package, registration, image, sudoers, network, nspawn

    var check: String {
        switch self {
        case .config: "config"
        case .marker: "marker"
        case .release: "release"
        case .unit: "units"
        case .package: "runner-package"
        case .registration: "runner"
        case .image: "images"
        case .network: "network"
        case .sudoers: "ci-nspawn-run"
        case .nspawn: "nspawn"
        }
    }

    func apply(to layout: HostLayout) throws {
        switch self {
        case .config:
            let text = String(decoding: try FilePaths.read(layout.configFile), as: UTF8.self)
            try AtomicFile.write(
                text.replacing("RUNNER_VERSION=2.336.0", with: "RUNNER_VERSION=latest"), to: layout.configFile)
        case .marker: try FilePaths.remove(layout.installedMarker)
        case .release:
            try AtomicFile.write(
                "#!/bin/sh\necho tampered\n", to: layout.releaseDirectory("v1.2.0") + "/runner-service.sh", mode: 0o755)
        case .unit: try FilePaths.remove(layout.systemdUnitDirectory + "/multi-user.target.wants/runner.service")
        case .package: try FilePaths.remove(layout.runnerDirectory + "/run.sh")
        case .registration: try FilePaths.remove(layout.runnerDirectory + "/.runner")
        case .image: try ImageStore(layout: layout).remove("tiny")
        case .sudoers: try AtomicFile.write("# emptied\n", to: layout.sudoersRule, mode: 0o440)
        case .nspawn, .network: break
        }
    }
}

@Suite(
    .serialized, .requiresRoot, .requires("useradd"), .requires("visudo"), .requires("python3"), .requires("curl"),
    .enabled(
        if: access(InstallHarness.runnerBuildBinary, X_OK) == 0,
        "needs the built runner-build (swift build --build-tests)")
)
struct DoctorTests {
    func installed(_ body: (InstallHarness) async throws -> Void) async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            // A registration token so the service settings validate; the runner is configured.
            let text = String(decoding: try FilePaths.read(h.layout.configFile), as: UTF8.self)
            try AtomicFile.write(text + "RUNNER_REGISTRATION_TOKEN=AFAKE\n", to: h.layout.configFile, mode: 0o600)
            _ = try await h.install()
            try AtomicFile.write(#"{"agentName": "r"}"#, to: h.layout.runnerDirectory + "/.runner")
            try await body(h)
        }
    }

    @Test func aHealthyInstallIsAllOK() async throws {
        try await installed { h in
            let findings = await Doctor(layout: h.layout, commandRunner: ScriptedNspawnRunner(nspawnSucceeds: true))
                .run()
            #expect(
                findings.map(\.check) == [
                    "config", "marker", "release", "libarchive", "units", "runner-package", "runner", "images",
                    "mounts",
                    "ci-nspawn-run", "userns", "network", "nspawn",
                ])
            for finding in findings where finding.check != "mounts" {
                #expect(finding.status == .ok, "\(finding.rendered)")
            }
            // A test root: the host's mounts are not its own.
            #expect(findings.first { $0.check == "mounts" }?.status == .skipped)
            #expect(findings.first { $0.check == "release" }?.detail.contains("1.2.0") == true)
            #expect(findings.first { $0.check == "libarchive" }?.detail.hasPrefix("libarchive 3.") == true)
        }
    }

    @Test(arguments: Breakage.allCases)
    func eachBreakageIsReportedWithAFix(breakage: Breakage) async throws {
        try await installed { h in
            try breakage.apply(to: h.layout)
            let findings = await Doctor(
                layout: h.layout,
                commandRunner: ScriptedNspawnRunner(
                    nspawnSucceeds: breakage != .nspawn, filterTable: breakage != .network)
            ).run()
            let problems = findings.filter { $0.status == .problem }
            #expect(problems.map(\.check) == [breakage.check], "\(findings.map(\.rendered))")
            #expect(problems.allSatisfy { $0.fix != nil })
            #expect(problems.first?.rendered.contains("fix: ") == true)
            if breakage == .nspawn {
                // What nspawn said is in the finding: the cause, without re-running it by hand.
                #expect(problems.first?.detail.hasSuffix("(exit status 1): nspawn: scripted failure") == true)
            }
        }
    }

    /// The real systemd-nspawn on the test image (a tiny tree without systemd) cannot boot it:
    /// the doctor says so, with a fix. (The ok path boots a baked debian-bookworm to poweroff.)
    @Test(.requires("systemd-nspawn"))
    func realNspawnReportsAnImageThatCannotBoot() async throws {
        try await installed { h in
            let findings = await Doctor(layout: h.layout, commandRunner: SystemCommandRunner()).run()
            let nspawn = try #require(findings.first { $0.check == "nspawn" })
            #expect(nspawn.status == .problem)
            #expect(nspawn.fix?.contains("systemd-nspawn") == true)
            // The cause nspawn gave, in the finding: the tree has no init to execute.
            #expect(nspawn.detail.contains("/sbin/init"), "\(nspawn.rendered)")
            #expect(nspawn.detail.count < 600, "\(nspawn.rendered)")
            // (The test root's filter table is set up by the service, which never ran here.)
            #expect(findings.filter { $0.status == .problem && $0.check != "network" }.map(\.check) == ["nspawn"])
        }
    }

    /// The work and externals directories must be on nosuid,nodev mounts; the fix names the units.
    @Test func mountsWithoutNosuidNodevAreAProblem() async throws {
        try await installed { h in
            var doctor = Doctor(layout: h.layout, commandRunner: ScriptedNspawnRunner(nspawnSucceeds: true))
            let root = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
            let work = "40 22 8:1 /w /var/lib/runner/work rw,nosuid,nodev - ext4 /dev/sda1 rw\n"
            let externals =
                "41 22 8:1 /e /opt/actions-runner/externals rw,nosuid,nodev - ext4 /dev/sda1 rw\n"
            doctor.mountInfo = root + work
            let problem = try #require(await doctor.run().first { $0.check == "mounts" })
            #expect(problem.status == .problem)
            #expect(problem.detail.contains("/opt/actions-runner/externals"))
            #expect(!problem.detail.contains("/var/lib/runner/work"))
            #expect(problem.fix?.contains("opt-actions\\x2drunner-externals.mount") == true)
            doctor.mountInfo = root + work + externals
            #expect(await doctor.run().first { $0.check == "mounts" }?.status == .ok)
        }
    }

    /// The boot finding carries nspawn's last lines, bounded: 5 lines, 400 characters.
    @Test func nspawnOutputInAFindingIsBounded() {
        let said = (1...9).map { "line \($0)" }.joined(separator: "\n") + "\n\n  "
        #expect(Doctor.tail(said) == "line 5 | line 6 | line 7 | line 8 | line 9")
        let long = Doctor.tail(String(repeating: "x", count: 1000) + "\nFailed to create /../payload subcgroup")
        #expect(long.count == 401 && long.hasPrefix("…") && long.hasSuffix("payload subcgroup"))
        #expect(Doctor.tail("") == "")
    }

}
