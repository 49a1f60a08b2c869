// swift-tools-version: 6.2
// The appliance for one GitHub Actions self-hosted runner on a systemd Linux host.
// Module map: README.md ("Code layout"). Swift 6 language mode, strict concurrency.

import PackageDescription

/// Release links take libstdc++ statically (`linker/libstdc++.so` is a linker script that turns the
/// toolchain's `-lstdc++` into `libstdc++.a`): with libarchive opened on first use (CLibArchive),
/// an agent call then loads only libc, libm and libgcc_s. Debug builds link as the toolchain does.
let staticLibstdcxx: [LinkerSetting] = [
    .unsafeFlags(["-L", Context.packageDirectory + "/linker"], .when(platforms: [.linux], configuration: .release))
]

let package = Package(
    name: "runner",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "runner-build", targets: ["runner-build"]),
        .executable(name: "runner-agent", targets: ["runner-agent"]),
        .executable(name: "runner-hook", targets: ["runner-hook"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // libarchive from the system (headers: Debian's libarchive-dev), opened on first use
        // (loader.c) rather than linked: a process that never touches an archive never maps it.
        .target(name: "CLibArchive", linkerSettings: [.linkedLibrary("dl")]),
        // Linux system calls Swift's Glibc module lacks: openat2, open_tree, move_mount, and the
        // fork-and-enter helpers that must run without the Swift runtime (see the headers).
        .target(name: "CRunnerSystem"),
        // Unix sockets with descriptor passing and peer credentials, on Glibc alone (no
        // Foundation): the relay's wire, shared by RunnerSystem and runner-hook.
        .target(name: "RunnerSockets"),
        // Swift wrapper over libarchive: reproducible writer, streaming reader, safe extraction,
        // deterministic gzip.
        .target(name: "RunnerArchive", dependencies: ["CLibArchive"]),
        // Shared leaf: errors, host layout, config.env, bundle manifest, commands as values, logging.
        .target(
            name: "RunnerCore",
            dependencies: [
                "RunnerArchive",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The OS layer: the one spawner (posix_spawn) and the real command runner on it, signal
        // forwarding, /proc, sockets, descriptor-based path resolution.
        .target(
            name: "RunnerSystem",
            dependencies: [
                "RunnerCore",
                "CRunnerSystem",
                "RunnerSockets",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The local store of rootfs images guests boot from.
        .target(
            name: "RunnerImages",
            dependencies: [
                "RunnerCore", "RunnerSystem", "RunnerArchive", "CRunnerSystem",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Ephemeral systemd-nspawn guests: lifecycle, policy, the guest's D-Bus, the step relay.
        // Used by the hook and the privileged helper; never uses the hook.
        .target(
            name: "RunnerGuests",
            dependencies: [
                "RunnerCore", "RunnerSystem", "RunnerImages", "CRunnerSystem",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The command-line pieces both executables share (archive list, config check output).
        .target(
            name: "RunnerCLI",
            dependencies: [
                "RunnerCore",
                "RunnerArchive",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Release side: user-data rendering, bundle building, rootfs baking, release.
        .target(
            name: "RunnerBuildKit",
            dependencies: [
                "RunnerCore",
                "RunnerCLI",
                "RunnerArchive",
                "RunnerSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Host side: installer, runner supervision, container hook, doctor, the agent's commands.
        .target(
            name: "RunnerAgentKit",
            dependencies: [
                "RunnerCore",
                "RunnerCLI",
                "RunnerArchive",
                "RunnerSystem",
                "RunnerImages",
                "RunnerGuests",
                "CRunnerSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "runner-build",
            dependencies: ["RunnerBuildKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            linkerSettings: staticLibstdcxx
        ),
        // The hook's client: every runner call starts one, so it is small, static and without
        // Foundation; steps go straight to the job's relay, other calls to `runner-agent hook`.
        .target(name: "RunnerHookClient", dependencies: ["RunnerSockets", "CRunnerSystem"]),
        .executableTarget(
            name: "runner-hook",
            dependencies: ["RunnerHookClient"],
            // Static, glibc included: no dynamic loader work on a call (it runs as the runner
            // user, on the runner's input only; nothing here resolves users or loads modules).
            linkerSettings: [.unsafeFlags(["-static-executable"], .when(platforms: [.linux]))]
        ),
        .executableTarget(
            name: "runner-agent",
            dependencies: ["RunnerAgentKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            linkerSettings: staticLibstdcxx
        ),

        // Test support: temporary roots, recording command runner, gating traits, fixtures, the
        // fakes (GitHub API, runner package, HTTP server) and harnesses more than one test target uses.
        .target(
            name: "RunnerTestSupport",
            dependencies: [
                "RunnerCore", "RunnerArchive", "RunnerSystem", "RunnerAgentKit",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/RunnerTestSupport"
        ),
        // Unit tests, one target per module: no root, no guests.
        .testTarget(name: "RunnerArchiveTests", dependencies: ["RunnerArchive", "RunnerCore", "RunnerTestSupport"]),
        .testTarget(
            name: "RunnerHookClientTests", dependencies: ["RunnerHookClient", "RunnerSockets", "RunnerTestSupport"]),
        .testTarget(name: "RunnerCoreTests", dependencies: ["RunnerCore", "RunnerTestSupport"]),
        .testTarget(
            name: "RunnerSystemTests",
            dependencies: ["RunnerSystem", "RunnerCore", "CRunnerSystem", "RunnerTestSupport"]),
        .testTarget(name: "RunnerImagesTests", dependencies: ["RunnerImages", "RunnerCore", "RunnerTestSupport"]),
        .testTarget(
            name: "RunnerGuestsTests",
            dependencies: ["RunnerGuests", "RunnerImages", "RunnerSystem", "RunnerCore", "RunnerTestSupport"]
        ),
        .testTarget(
            name: "RunnerAgentKitTests",
            dependencies: [
                "RunnerAgentKit", "RunnerGuests", "RunnerImages", "RunnerSystem", "RunnerTestSupport",
                "RunnerSockets",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "RunnerBuildKitTests",
            dependencies: [
                "RunnerBuildKit", "RunnerSystem", "RunnerTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            resources: [.copy("Golden")]
        ),
        // Integration tests: root, systemd-nspawn guests, namespaces, mmdebstrap, real users.
        // Each suite skips with its reason where the machine does not allow it.
        .testTarget(
            name: "RunnerIntegrationTests",
            dependencies: [
                "RunnerAgentKit", "RunnerBuildKit", "RunnerGuests", "RunnerImages", "RunnerSystem", "RunnerArchive",
                "RunnerCore", "CRunnerSystem", "RunnerTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)

for target in package.targets where target.type != .system && target.name != "CRunnerSystem" {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
