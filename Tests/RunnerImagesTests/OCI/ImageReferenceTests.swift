import RunnerCore
import RunnerImages
import Testing

@Suite struct ImageReferenceTests {
    @Test(arguments: [
        ("node:20", "docker.io/library/node:20", "registry-1.docker.io"),
        ("node", "docker.io/library/node:latest", "registry-1.docker.io"),
        ("docker.io/node:20", "docker.io/library/node:20", "registry-1.docker.io"),
        ("index.docker.io/library/node", "docker.io/library/node:latest", "registry-1.docker.io"),
        ("bitnami/redis:7.2", "docker.io/bitnami/redis:7.2", "registry-1.docker.io"),
        ("ghcr.io/org/ci:1.4", "ghcr.io/org/ci:1.4", "ghcr.io"),
        ("127.0.0.1:5000/test/busybox:1", "127.0.0.1:5000/test/busybox:1", "127.0.0.1:5000"),
        ("localhost/x", "localhost/x:latest", "localhost"),
        ("docker://alpine:3.20", "docker.io/library/alpine:3.20", "registry-1.docker.io"),
    ])
    func normalises(_ text: String, _ expected: String, _ host: String) throws {
        let reference = try ImageReference(parsing: text)
        #expect(reference.description == expected)
        #expect(reference.registryHost == host)
    }

    @Test func digestsPinAndWinOverTags() throws {
        let hex = String(repeating: "ab", count: 32)
        let pinned = try ImageReference(parsing: "node@sha256:\(hex)")
        #expect(pinned.tag == nil)
        #expect(pinned.digest == "sha256:\(hex)")
        #expect(pinned.manifestReference == "sha256:\(hex)")
        let both = try ImageReference(parsing: "ghcr.io/a/b:1@sha256:\(hex)")
        #expect(both.tag == "1")
        #expect(both.manifestReference == "sha256:\(hex)")
        #expect(both.description == "ghcr.io/a/b:1@sha256:\(hex)")
    }

    @Test(arguments: [
        "", "Node:20", "node:", "node@sha256:abc", "a//b", "node:-x", "-a/b", "ghcr.io/", "a b",
        "http://ghcr.io/x", "node@md5:" + String(repeating: "0", count: 32),
    ])
    func refuses(_ text: String) {
        #expect(throws: RunnerError.self) { try ImageReference(parsing: text) }
    }

    @Test func loopbackRegistriesAreKnown() throws {
        #expect(try ImageReference(parsing: "127.0.0.1:5000/a").isLoopback)
        #expect(try ImageReference(parsing: "localhost:5000/a").isLoopback)
        #expect(try ImageReference(parsing: "[::1]:5000/a").isLoopback)
        #expect(!(try ImageReference(parsing: "ghcr.io/a").isLoopback))
        // A name that merely starts like a loopback address is a remote host: https.
        #expect(!(try ImageReference(parsing: "127.example.com/a").isLoopback))
        #expect(!(try ImageReference(parsing: "127.0.0.1.nip.io/a").isLoopback))
    }

    @Test func platformsOfAnIndex() {
        let amd = OCIDescriptor(
            mediaType: OCIMediaType.ociManifest, digest: "sha256:" + String(repeating: "1", count: 64), size: 1,
            platform: OCIPlatform(os: "linux", architecture: "amd64"))
        let arm = OCIDescriptor(
            mediaType: OCIMediaType.ociManifest, digest: "sha256:" + String(repeating: "2", count: 64), size: 1,
            platform: OCIPlatform(os: "linux", architecture: "arm64", variant: "v8"))
        let arm7 = OCIDescriptor(
            mediaType: OCIMediaType.ociManifest, digest: "sha256:" + String(repeating: "3", count: 64), size: 1,
            platform: OCIPlatform(os: "linux", architecture: "arm", variant: "v7"))
        let index = OCIIndex(manifests: [arm7, arm, amd])
        #expect(index.manifest(for: .linux(machine: "x86_64")) == amd)
        #expect(index.manifest(for: .linux(machine: "aarch64")) == arm)
        #expect(index.manifest(for: .linux(machine: "armv7l")) == arm7)
        #expect(index.manifest(for: .linux(machine: "s390x")) == nil)
        #expect(index.manifest(for: OCIPlatform(os: "windows", architecture: "amd64")) == nil)
    }
}
