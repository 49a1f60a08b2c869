import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

@Suite
struct HookDecodingTests {
    @Test func prepareJobFixture() throws {
        let input = try HookInput.decode(try Fixtures.hook("runner-prepare_job.json"))
        #expect(input.command == "prepare_job")
        #expect(input.state == nil)
        let container = try #require(input.args.container)
        #expect(container.image == "ghcr.io/octo-org/ci-image:1.4")
        #expect(container.environmentVariables["HOME"] == "/github/home")
        #expect(container.portMappings == ["8080:80"])
        #expect(container.systemMountVolumes.count == 8)
        #expect(container.systemMountVolumes[2].readOnly)
        #expect(container.userMountVolumes.map(\.sourceVolumePath) == ["my_docker_volume", "/srv/cache"])
        #expect(input.args.services.map(\.image) == ["redis:7-alpine", "postgres:16"])
        #expect(input.args.services[1].environmentVariables["POSTGRES_DB"] == "app")
    }

    @Test func runScriptStepFixture() throws {
        let input = try HookInput.decode(try Fixtures.hook("runner-run_script_step.json"))
        #expect(input.command == "run_script_step")
        #expect(input.args.entryPoint == "bash")
        #expect(input.args.entryPointArgs.first == "--noprofile")
        #expect(input.args.prependPath == ["/__w/_tool/node/20.11.1/x64/bin", "/github/home/.local/bin"])
        #expect(input.args.workingDirectory == "/__w/octo-repo/octo-repo")
        #expect(input.args.environmentVariables["GITHUB_ACTION"] == "__run_2")
        // A docker-hook-shaped state has none of our keys: decoded, but names no guest.
        #expect(input.state?.guest == nil)
    }

    @Test func runContainerStepFixture() throws {
        let input = try HookInput.decode(try Fixtures.hook("runner-run_container_step.json"))
        #expect(input.command == "run_container_step")
        #expect(input.args.image == nil)
        #expect(input.args.dockerfile?.hasSuffix("/Dockerfile") == true)
        #expect(input.args.entryPointArgs == ["\"Mona", "the", "Octocat\""])
    }

    @Test func cleanupJobFixture() throws {
        let input = try HookInput.decode(try Fixtures.hook("runner-cleanup_job.json"))
        #expect(input.command == "cleanup_job")
        #expect(input.args.services.isEmpty)
    }

    @Test(arguments: ["prepare-job.json", "run-container-step.json", "run-script-step.json"])
    func upstreamExamplesDecodeLeniently(_ name: String) throws {
        let input = try HookInput.decode(try Fixtures.hook("upstream-examples/" + name))
        #expect(!input.command.isEmpty)
    }
}
