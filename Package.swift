// swift-tools-version: 6.2
// The appliance for one GitHub Actions self-hosted runner on a systemd Linux host.
// Module map: README.md ("Code layout"). Swift 6 language mode, strict concurrency.

import PackageDescription

let package = Package(
    name: "runner",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "runner-build", targets: ["runner-build"]),
        .executable(name: "runner-agent", targets: ["runner-agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // libarchive from the system (Debian: libarchive-dev), found through pkg-config.
        .systemLibrary(
            name: "CLibArchive",
            pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]
        ),
        // Linux system calls Swift's Glibc module lacks: openat2, open_tree, move_mount, and the
        // fork-and-enter helpers that must run without the Swift runtime (see the headers).
        .target(name: "CRunnerSystem"),
        // Swift wrapper over libarchive: reproducible writer, streaming reader, safe extraction.
        .target(
            name: "RunnerArchive",
            dependencies: [
                "CLibArchive",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // Shared leaf: errors, host layout, config.env, bundle manifest, commands as values, logging.
        .target(
            name: "RunnerCore",
            dependencies: [
                "RunnerArchive",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The OS layer: the one spawner (posix_spawn) and the real command runner on it, signal
        // forwarding, /proc, sockets, descriptor-based path resolution.
        .target(
            name: "RunnerSystem",
            dependencies: [
                "RunnerCore",
                "CRunnerSystem",
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
        // Release side: user-data rendering, bundle building, rootfs baking, release.
        .target(
            name: "RunnerBuildKit",
            dependencies: [
                "RunnerCore",
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
            dependencies: ["RunnerBuildKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "runner-agent",
            dependencies: ["RunnerAgentKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // Test support: temporary roots, recording command runner, gating traits, golden files.
        .target(
            name: "RunnerTestSupport",
            dependencies: ["RunnerCore", "RunnerArchive", "RunnerSystem"],
            path: "Tests/RunnerTestSupport"
        ),
        .testTarget(name: "RunnerArchiveTests", dependencies: ["RunnerArchive", "RunnerSystem", "RunnerTestSupport"]),
        .testTarget(name: "RunnerCoreTests", dependencies: ["RunnerCore", "RunnerSystem", "RunnerTestSupport"]),
        .testTarget(
            name: "RunnerBuildKitTests",
            dependencies: [
                "RunnerBuildKit", "RunnerSystem", "RunnerTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            resources: [.copy("Golden")]
        ),
        .testTarget(
            name: "RunnerAgentKitTests",
            dependencies: [
                "RunnerAgentKit", "RunnerGuests", "RunnerImages", "RunnerSystem", "RunnerTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
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
