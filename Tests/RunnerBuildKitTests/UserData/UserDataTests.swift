import Foundation
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerBuildKit

@Suite struct UserDataTests {
    func render(_ site: String, gzip: Bool = false, budget: Int = UserData.defaultBudget) throws -> UserData.Output {
        let config = try RunnerConfig.parse(Array(site.utf8), source: "site.env", options: .render)
        let needsDigest = config.bootstrapMode == .bundle
        return try UserData.render(
            .init(
                config: config, ref: "v1.2", bundleSHA256: needsDigest ? SiteConfigs.hex : nil,
                unit: Repo.text("cloud-init/runner-install.service"), bootstrap: Repo.text("cloud-init/bootstrap.sh"),
                gzip: gzip, budget: budget))
    }

    /// Compares with `Golden/NAME`; `RUNNER_RECORD_GOLDEN=1` rewrites the file in the source tree.
    func expectGolden(_ bytes: [UInt8], _ name: String) throws {
        if ProcessInfo.processInfo.environment["RUNNER_RECORD_GOLDEN"] == "1" {
            try AtomicFile.write(bytes, to: Repo.root + "/Tests/RunnerBuildKitTests/Golden/" + name)
            return
        }
        let url = try #require(
            Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Golden"),
            "no Golden/\(name): record it with RUNNER_RECORD_GOLDEN=1 swift test --filter UserDataTests")
        let golden = try [UInt8](Data(contentsOf: url))
        #expect(golden == bytes, "differs from Golden/\(name); if intended, re-record with RUNNER_RECORD_GOLDEN=1")
    }

    @Test func plainMatchesGolden() throws {
        let output = try render(SiteConfigs.minimal)
        try expectGolden(output.bytes, "userdata-minimal.yaml")
        let text = String(decoding: output.bytes, as: UTF8.self)
        #expect(text.hasPrefix("#cloud-config\n"))
        #expect(text.contains("RUNNER_BOOTSTRAP_REPO_REF=v1.2\n"))
        #expect(text.contains("RUNNER_BUNDLE_SHA256=\(SiteConfigs.hex)\n"))
    }

    @Test func gzipMatchesGoldenAndHasNoTimestampOrName() async throws {
        let output = try render(SiteConfigs.minimal, gzip: true)
        try expectGolden(output.bytes, "userdata-minimal.yaml.gz")
        #expect(Array(output.bytes.prefix(3)) == [0x1F, 0x8B, 8])
        #expect(output.bytes[3] == 0, "no FNAME or other flags")
        #expect(Array(output.bytes[4..<8]) == [0, 0, 0, 0], "no timestamp")
        let plain = try render(SiteConfigs.minimal)
        #expect(output.plainSize == plain.bytes.count)
        #expect(output.bytes.count < plain.bytes.count)
        let gunzip = try await runTool("gzip", ["-dc"], input: output.bytes)
        #expect(gunzip.status.isSuccess)
        #expect(Array(gunzip.standardOutput.utf8) == plain.bytes)
    }

    @Test func sameInputsSameBytes() throws {
        for site in [SiteConfigs.minimal, SiteConfigs.largest, SiteConfigs.gitApp] {
            #expect(try render(site).bytes == render(site).bytes)
            #expect(try render(site, gzip: true).bytes == render(site, gzip: true).bytes)
        }
    }

    @Test func overBudgetIsRefusedNamingSizeAndBudget() throws {
        let size = try render(SiteConfigs.minimal).bytes.count
        let config = try RunnerConfig.parse(Array(SiteConfigs.minimal.utf8), source: "site.env", options: .render)
        let error = renderError(
            .init(
                config: config, ref: "v1.2", bundleSHA256: SiteConfigs.hex,
                unit: try Repo.text("cloud-init/runner-install.service"),
                bootstrap: try Repo.text("cloud-init/bootstrap.sh"), gzip: false, budget: 1000))
        #expect(
            error?.problem.contains("is \(size) bytes, over the budget of 1000 bytes") == true,
            "\(String(describing: error))")
        #expect(error?.fix?.contains("--gzip") == true)
    }

    func renderError(_ input: UserData.Input) -> RunnerError? {
        do {
            _ = try UserData.render(input)
            return nil
        } catch {
            return error
        }
    }

    @Test func refRefusedWhenMalformedOrConflicting() throws {
        let config = try RunnerConfig.parse(Array(SiteConfigs.minimal.utf8), source: "site.env", options: .render)
        let unit = try Repo.text("cloud-init/runner-install.service")
        let badRef = renderError(
            .init(config: config, ref: "-bad", bundleSHA256: SiteConfigs.hex, unit: unit, bootstrap: "", gzip: false))
        #expect(badRef?.input == "--ref")
        let badDigest = renderError(
            .init(config: config, ref: "v1.2", bundleSHA256: "xyz", unit: unit, bootstrap: "", gzip: false))
        #expect(badDigest?.input == "--bundle-sha256")
        let pinned = try RunnerConfig.parse(
            Array((SiteConfigs.minimal + "RUNNER_BOOTSTRAP_REPO_REF=v1.1\n").utf8), source: "site.env",
            options: .render)
        let conflict = renderError(
            .init(config: pinned, ref: "v1.2", bundleSHA256: SiteConfigs.hex, unit: unit, bootstrap: "", gzip: false))
        #expect(conflict?.input == "site.env:6")
        #expect(conflict?.problem.contains("--ref says v1.2") == true)
    }

    @Test(arguments: ["minimal", "largest", "gitApp"])
    func yamlRoundTripGivesBackEveryFile(_ name: String) async throws {
        let site = ["minimal": SiteConfigs.minimal, "largest": SiteConfigs.largest, "gitApp": SiteConfigs.gitApp][name]!
        let output = try render(site)
        let script = """
            import base64, json, sys, yaml
            doc = yaml.safe_load(sys.stdin.buffer.read())
            for f in doc["write_files"]:
                if f.get("encoding") == "b64":
                    f["content"] = base64.b64decode(f["content"]).decode()
                    del f["encoding"]
            json.dump(doc, sys.stdout)
            """
        let result = try await runTool("/usr/bin/python3", ["-c", script], input: output.bytes)
        try #require(result.status.isSuccess, "\(result.standardError)")
        let doc = try #require(
            JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let files = try #require(doc["write_files"] as? [[String: String]])
        #expect(
            files.map { $0["path"] } == [
                "/etc/runner/config.env", UserData.unitPath, "/usr/local/lib/runner/bootstrap.sh",
            ])
        #expect(files.map { $0["permissions"] } == ["0600", "0644", "0755"])
        #expect(files.allSatisfy { $0["owner"] == "root:root" })
        #expect(files[0]["content"] == output.config.rendered())
        #expect(files[1]["content"] == (try Repo.text("cloud-init/runner-install.service")))
        #expect(files[2]["content"] == (try Repo.text("cloud-init/bootstrap.sh")))
        #expect(doc["packages"] as? [String] == UserData.packages)
        #expect(doc["package_update"] as? Bool == true)
        // sudo (every hook call) resolves the host name: cloud-init keeps it in /etc/hosts.
        #expect(doc["manage_etc_hosts"] as? String == "localhost")
        #expect(
            doc["runcmd"] as? [[String]] == [
                ["systemctl", "daemon-reload"],
                ["systemctl", "enable", "--now", "--no-block", "runner-install.service"],
            ])
        // The config.env inside reads back (systemd semantics) to the site values plus the pins.
        let site2 = try RunnerConfig.parse(Array(site.utf8), source: "site", options: .syntax)
        let inside = try RunnerConfig.parse(Array((files[0]["content"] ?? "").utf8), source: "inside", options: .syntax)
        for (key, entry) in site2.entries {
            #expect(inside.entries[key]?.value == entry.value, "\(key)")
        }
        #expect(inside.bootstrapRepoRef == "v1.2")
    }

    @Test func emitterFallsBackToBase64ForContentALiteralBlockCannotCarry() {
        #expect(CloudConfigYAML.literalBlock("a\n", indent: "  ") == "  a\n")
        #expect(CloudConfigYAML.literalBlock("a\n\nb\n", indent: "  ") == "  a\n\n  b\n")
        for content in [
            "no newline", "two\n\n", " leading\n", "nel\u{85}\n", "ls\u{2028}\n", "bom\u{FEFF}\n", "c0\u{1}\n",
        ] {
            #expect(CloudConfigYAML.literalBlock(content, indent: "  ") == nil, "\(content.debugDescription)")
        }
        #expect(CloudConfigYAML.quoted("a\"b\\c\u{85}é\u{1F600}") == "\"a\\\"b\\\\c\\x85\\xE9\\U0001F600\"")
    }

    @Test(
        .requires("cloud-init"), .enabled(if: FilePaths.exists("/usr/bin/python3"), "needs Debian's python3"),
        arguments: ["minimal", "largest", "gitApp"])
    func cloudInitSchemaAcceptsIt(_ name: String) async throws {
        let site = ["minimal": SiteConfigs.minimal, "largest": SiteConfigs.largest, "gitApp": SiteConfigs.gitApp][name]!
        let output = try render(site)
        try await withTemporaryDirectory("schema") { dir in
            let file = dir.appending("user-data")
            try AtomicFile.write(output.bytes, to: file, mode: 0o600)
            let result = try await runTool("cloud-init", ["schema", "--config-file", file])
            #expect(result.status.isSuccess, "\(result.standardOutput)\(result.standardError)")
            #expect(result.standardOutput.contains("Valid cloud-config"))
        }
        if name == "largest" {
            let gz = try render(site, gzip: true)
            #expect(output.bytes.count <= UserData.defaultBudget)
            print("largest realistic user-data: \(output.bytes.count) bytes plain, \(gz.bytes.count) bytes gzip'd")
        }
    }

    @Test(.requires("cloud-init"))
    func cloudInitSchemaCatchesABrokenDocument() async throws {
        // The validator is live: a typo'd write_files key is refused (so a pass above means something).
        let output = try render(SiteConfigs.minimal)
        let broken = String(decoding: output.bytes, as: UTF8.self).replacing(
            "    permissions:", with: "    permission:")
        try await withTemporaryDirectory("schema") { dir in
            try AtomicFile.write(broken, to: dir.appending("user-data"), mode: 0o600)
            let result = try await runTool("cloud-init", ["schema", "--config-file", dir.appending("user-data")])
            #expect(!result.status.isSuccess)
        }
    }
}
