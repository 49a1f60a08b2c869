import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests

@Suite struct StepEnvironmentTests {
    @Test func theContainersEnvironmentOverridesTheImages() {
        let env = StepEnvironment.container(
            image: ["PATH=/opt/img/bin:/usr/bin", "LANG=C.UTF-8", "A=image", "A=image-later", "BARE", "=skipped"],
            container: ["A": "container", "CI": "true"])
        #expect(
            env == [
                "PATH": "/opt/img/bin:/usr/bin", "LANG": "C.UTF-8", "A": "container", "BARE": "", "CI": "true",
            ])
    }

    @Test func prependPathGoesInFrontOfTheImagesPath() {
        let env = StepEnvironment.step(
            container: ["PATH": "/opt/img/bin:/usr/bin", "X": "1"], step: ["Y": "2"],
            prependPath: ["/__w/_tool/node/bin", "/github/home/.local/bin"])
        #expect(env["PATH"] == "/__w/_tool/node/bin:/github/home/.local/bin:/opt/img/bin:/usr/bin")
        #expect(env["X"] == "1" && env["Y"] == "2")
    }

    @Test func theStepsPathWinsAndTheDefaultFillsIn() {
        #expect(
            StepEnvironment.step(container: ["PATH": "/img"], step: ["PATH": "/step"], prependPath: ["/p"])["PATH"]
                == "/p:/step")
        #expect(StepEnvironment.step(container: [:], step: [:], prependPath: [])["PATH"] == GuestDefaults.path)
        #expect(
            StepEnvironment.step(container: [:], step: [:], prependPath: ["/p"])["PATH"] == "/p:" + GuestDefaults.path)
    }
}
