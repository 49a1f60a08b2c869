import FoundationEssentials
import Logging
import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerAgentKit
@testable import RunnerImages
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

@Suite(
    .serialized, .requiresRoot, .requires("useradd"), .requires("visudo"), .requires("python3"), .requires("curl"),
    .enabled(
        if: access(InstallHarness.runnerBuildBinary, X_OK) == 0,
        "needs the built runner-build (swift build --build-tests)")
)
struct InstallTests {
    @Test func cleanInstallThenASecondRunChangesNothing() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            let (first, lines) = try await h.install()
            let names = try h.installer().steps.map(\.name)
            #expect(
                names == [
                    "release", "host-files", "runner-user", "schedulers", "runner-package", "work-directory", "mounts",
                    "images", "sudoers", "systemd", "marker",
                ])
            #expect(names.allSatisfy { first[$0] == .done }, "\(lines)")
            let layout = h.layout
            #expect(SymbolicLink.target(layout.currentRelease) == "releases/v1.2.0")
            #expect(SymbolicLink.target(layout.guestHelper) == "/usr/local/lib/runner/current/bin/runner-agent")
            // `sudo runner-agent doctor` (the README's command): the agent of the active release on PATH.
            let agentOnPath = try #require(SymbolicLink.target(layout.path("/usr/local/bin/runner-agent")))
            #expect(agentOnPath == "/usr/local/lib/runner/current/bin/runner-agent")
            let doctor = try await SystemCommandRunner().run(Command(layout.path(agentOnPath), ["doctor"]))
            #expect(doctor.status == .exited(0), "the stand-in agent through the link: \(doctor)")
            #expect(FilePaths.exists(layout.systemdUnitDirectory + "/runner.service"))
            #expect(
                SymbolicLink.target(layout.systemdUnitDirectory + "/multi-user.target.wants/runner.service")
                    == "/etc/systemd/system/runner.service")
            let user = try #require(PasswdFile.lookup("ci-runner", layout: layout))
            var st = stat()
            #expect(stat(layout.runnerDirectory + "/run.sh", &st) == 0 && st.st_uid == user.uid)
            #expect(stat(layout.workDirectory, &st) == 0 && st.st_uid == user.uid)
            let sudoers = String(decoding: try FilePaths.read(layout.sudoersRule), as: UTF8.self)
            #expect(sudoers.contains("ci-runner ALL=(root) NOPASSWD: /usr/local/bin/ci-nspawn-run\n"))
            // The work and externals directories get nosuid,nodev bind mounts, enabled and
            // required by runner.service.
            for (unit, path) in [
                ("var-lib-runner-work.mount", "/var/lib/runner/work"),
                ("opt-actions\\x2drunner-externals.mount", "/opt/actions-runner/externals"),
            ] {
                let text = String(decoding: try FilePaths.read(layout.systemdUnitDirectory + "/" + unit), as: UTF8.self)
                #expect(text.contains("What=\(path)\nWhere=\(path)\nType=none\nOptions=bind,nosuid,nodev\n"))
                #expect(
                    SymbolicLink.target(layout.systemdUnitDirectory + "/multi-user.target.wants/" + unit)
                        == "/etc/systemd/system/" + unit)
            }
            // The runner user may not leave cron or at jobs that run between jobs.
            for file in ["/etc/cron.deny", "/etc/at.deny"] {
                #expect(try FilePaths.read(layout.path(file)) == Array("ci-runner\n".utf8))
            }
            let dropIn = try FilePaths.read(layout.systemdUnitDirectory + "/runner.service.d/10-mounts.conf")
            #expect(
                String(decoding: dropIn, as: UTF8.self).contains(
                    "RequiresMountsFor=/var/lib/runner/work /opt/actions-runner/externals\n"))
            #expect(try ImageStore(layout: layout).resolve("tiny").digest == artefacts.imageSHA256)
            let marker = String(decoding: try FilePaths.read(layout.installedMarker), as: UTF8.self)
            #expect(marker == "release=v1.2.0\nrunner=2.336.0\n")
            let digest = try h.treeDigest()
            let downloads = try await artefacts.github.stats()["download"]

            let (second, secondLines) = try await h.install()
            #expect(names.allSatisfy { second[$0] == .alreadyDone }, "\(secondLines)")
            #expect(secondLines.allSatisfy { $0.contains("already done") })
            #expect(try h.treeDigest() == digest)
            #expect(try await artefacts.github.stats()["download"] == downloads)
        }
    }

    /// bootstrap.sh's git mode: `install --source CHECKOUT` makes the same kind of release.
    @Test func installFromASourceCheckout() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            let checkout = dir.appending("checkout")
            for file in BundleLayout.files {
                let bytes: [UInt8]
                switch file.source {
                case .agentBinary, .hookBinary: bytes = Array("#!/bin/sh\nexit 0\n".utf8)
                case .repository(let relative): bytes = try FilePaths.read(Repo.root + "/" + relative)
                }
                let path = checkout + "/" + sourcePath(file)
                try AtomicFile.write(bytes, to: path, mode: file.mode)
            }
            var installer = try h.installer(bundle: false)
            installer.unpacker = CheckoutRelease(checkout: checkout, version: try BundleVersion("v1.3"))
            let lines = LogCapture()
            let runner = StepRunner(logger: Logger(label: "t")) { lines.append($0) }
            let first = try await runner.run(installer.steps, dryRun: false)
            #expect(first.values.allSatisfy { $0 == .done }, "\(lines.all)")
            #expect(SymbolicLink.target(h.layout.currentRelease) == "releases/v1.3")
            let manifest = try BundleVerifier.checkTree(h.layout.releaseDirectory("v1.3"), bundle: "test")
            #expect(manifest.files.count == BundleLayout.files.count)
            let second = try await runner.run(installer.steps, dryRun: false)
            #expect(second.values.allSatisfy { $0 == .alreadyDone })
        }
    }

    func sourcePath(_ file: BundleLayout.File) -> String {
        if case .repository(let relative) = file.source { return relative }
        return file.path
    }

    @Test func dryRunPrintsThePlanAndWritesNothing() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            let before = try h.treeDigest()
            let (outcomes, lines) = try await h.install(dryRun: true)
            #expect(outcomes.values.allSatisfy { $0 == .wouldRun })
            #expect(lines.count == 11)
            #expect(lines.first?.hasPrefix("[1/11] release: would run: unpack and verify") == true)
            #expect(try h.treeDigest() == before)
        }
    }

    @Test func aTamperedBundleIsRefusedAndNothingIsSwitched() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            // Same manifest, different agent bytes.
            var bytes = try FilePaths.read(artefacts.bundle)
            let manifest = try ArchiveReader.readMember("MANIFEST.json", from: artefacts.bundle)
            let tampered = dir.appending("tampered.tar.gz")
            try ReproducibleArchive.write(
                [
                    ArchiveMember(path: "MANIFEST.json", content: .bytes(manifest), permissions: 0o644),
                    ArchiveMember(path: "bin/runner-agent", content: .bytes(Array("evil".utf8)), permissions: 0o755),
                ], to: tampered, options: ReproducibleArchive.Options(leadingPaths: ["MANIFEST.json"]))
            bytes = []
            var installer = try h.installer()
            installer.bundle = tampered
            let runner = StepRunner(logger: Logger(label: "t")) { _ in }
            let error = await #expect(throws: RunnerError.self) { try await runner.run(installer.steps, dryRun: false) }
            #expect(error?.code == .integrity || error?.code == .notFound || error?.code == .io)
            #expect(!FilePaths.exists(h.layout.currentRelease))
            #expect(!FilePaths.exists(h.layout.installedMarker))
            #expect(bytes.isEmpty)
        }
    }

    /// SIGKILL after every step, and at 20 random moments; a re-run always converges to the
    /// clean tree, and the marker exists only once everything else does.
    @Test func killedAnywhereTheInstallerConvergesOnTheNextRun() async throws {
        try #require(access(InstallHarness.agentBinary, X_OK) == 0, "build runner-agent first (swift build)")
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let clean = try InstallHarness(artefacts: artefacts)
            defer { clean.finish() }
            let start = ContinuousClock.now
            #expect(try await clean.installBinary() == .exited(0))
            let cleanDuration = ContinuousClock.now - start
            let cleanDigest = try clean.treeDigest()
            let cleanLines = Set(try clean.treeLines())
            let steps = try clean.installer().steps.map(\.name)

            var trials: [(String?, Duration?)] = steps.map { ($0, nil) }
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<20 {
                let fraction = Double.random(in: 0...1, using: &generator)
                trials.append((nil, cleanDuration * fraction))
            }
            for (step, delay) in trials {
                let h = try InstallHarness(artefacts: artefacts)
                defer { h.finish() }
                let status = try await h.installBinary(killAfterStep: step, killAfter: delay)
                if step != nil { #expect(status == .signaled(SIGKILL), "killed after \(step ?? "")") }
                if FilePaths.exists(h.layout.installedMarker) {
                    #expect(step == nil || step == "marker", "marker before the last step (after \(step ?? ""))")
                    #expect(try h.treeDigest() == cleanDigest, "marker exists but the host is not fully installed")
                }
                #expect(try await h.installBinary() == .exited(0), "re-run after \(step ?? "\(delay!)")")
                let lines = Set(try h.treeLines())
                let same = lines == cleanLines
                #expect(
                    same,
                    """
                    diverged after a kill \(step.map { "after \($0)" } ?? "at \(delay!)"): \
                    extra \(lines.subtracting(cleanLines).sorted()), missing \(cleanLines.subtracting(lines).sorted())
                    """)
            }
        }
    }
}
