import Foundation

/// Site configs the user-data tests render.
enum SiteConfigs {
    static let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

    /// What most sites write: a repo URL, a token file, labels.
    static let minimal = """
        # site.env for the golden test
        RUNNER_GITHUB_URL=https://github.com/acme/widgets
        RUNNER_REGISTRATION_TOKEN=AAAA-SECRET-TOKEN-0001
        RUNNER_LABELS=linux,nspawn
        RUNNER_BOOTSTRAP_REPO_URL=https://github.com/acme/runner

        """

    /// Everything set, with an inline JIT config of realistic size: the largest realistic one.
    static var largest: String {
        // A JIT config is base64 of JSON holding .runner, .credentials and an RSA key: ~3 KB.
        let jit = String(Data((0..<2300).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }).base64EncodedString())
        let images = ["debian-bookworm", "debian-trixie", "ubuntu-jammy", "ubuntu-noble", "alpine-3-20"].map {
            "\($0)=https://artifacts.internal.example.com/runner/v1.2/rootfs-\($0)-v1.2.tar.zst@sha256:\(hex)"
        }
        return """
            RUNNER_GITHUB_URL=https://ghes.internal.example.com/platform-engineering
            RUNNER_NAME=build-eu-west-1-0042
            RUNNER_LABELS="linux,x64,nspawn,eu-west-1,large,gpu-none,team-platform,build"
            RUNNER_GROUP="Platform Engineering"
            RUNNER_EPHEMERAL=true
            RUNNER_NO_DEFAULT_LABELS=false
            RUNNER_WORK_DIR=/var/lib/runner/work
            RUNNER_USER=runner
            RUNNER_JIT_CONFIG=\(jit)
            RUNNER_VERSION=2.336.0
            RUNNER_TARBALL_URL=https://artifacts.internal.example.com/actions-runner/actions-runner-linux-x64-2.336.0.tar.gz
            RUNNER_TARBALL_SHA256=\(hex)
            RUNNER_BUNDLE_URL=https://artifacts.internal.example.com/runner/v1.2/runner-bundle-v1.2-linux-x86_64.tar.gz
            RUNNER_BOOTSTRAP_MODE=bundle
            RUNNER_BOOTSTRAP_REPO_URL=https://ghes.internal.example.com/platform-engineering/runner
            RUNNER_IMAGES="\(images.joined(separator: " "))"
            RUNNER_DEFAULT_IMAGE=debian-bookworm
            RUNNER_IMAGE_ALIASES="ubuntu:22.04=ubuntu-jammy ubuntu:24.04=ubuntu-noble node:20=debian-bookworm node:22=debian-bookworm python:3.12=debian-bookworm alpine:3.20=alpine-3-20"
            RUNNER_REQUIRE_JOB_CONTAINER=true
            RUNNER_ALLOW_DOCKER_SOCK=false
            RUNNER_GUEST_MOUNT_ALLOW="/srv/cache /srv/toolcache"
            HTTP_PROXY=http://proxy.internal.example.com:3128
            HTTPS_PROXY=http://proxy.internal.example.com:3128
            NO_PROXY=localhost,127.0.0.1,.internal.example.com,169.254.169.254

            """
    }

    /// Git mode with a GitHub App and values that need quoting.
    static let gitApp = """
        RUNNER_GITHUB_URL=https://github.com/acme
        RUNNER_APP_ID=123456
        RUNNER_APP_INSTALLATION_ID=7890123
        RUNNER_APP_PRIVATE_KEY_FILE=/etc/runner/app.pem
        RUNNER_GROUP="Team \\"Q\\" $HOME `x` grüße"
        RUNNER_BOOTSTRAP_MODE=git
        RUNNER_BOOTSTRAP_REPO_URL=https://github.com/acme/runner.git

        """
}
