import FoundationEssentials
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// The media types a pull understands (OCI image-spec and Docker's schema 2).
public enum OCIMediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"

    /// What a manifest request accepts, in this order.
    public static let manifestAccept = [ociIndex, dockerManifestList, ociManifest, dockerManifest]

    public static func isIndex(_ type: String) -> Bool { type == ociIndex || type == dockerManifestList }
    public static func isManifest(_ type: String) -> Bool { type == ociManifest || type == dockerManifest }

    /// Whether a layer of this type can be unpacked: tar, gzip or zstd tar (OCI and Docker names).
    /// Foreign (non-distributable) layers and other artefacts are refused.
    public static func isUnpackableLayer(_ type: String) -> Bool {
        [
            "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.image.rootfs.diff.tar",
        ].contains(type)
    }
}

/// An OCI content descriptor: what a manifest or index says about a blob.
public struct OCIDescriptor: Sendable, Hashable, Codable {
    public var mediaType: String
    /// `sha256:<hex>`.
    public var digest: String
    public var size: Int64
    public var platform: OCIPlatform?
    public var annotations: [String: String]?

    public init(mediaType: String, digest: String, size: Int64, platform: OCIPlatform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
    }

    /// The hex of ``digest`` when it is a sha256 digest; nil for any other algorithm.
    public var sha256Hex: String? {
        guard ImageReference.isDigest(digest) else { return nil }
        return String(digest.dropFirst("sha256:".count))
    }
}

/// An image's platform, as an index names it.
public struct OCIPlatform: Sendable, Hashable, Codable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// `linux/arm64/v8`.
    public var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }

    /// This host: linux and the kernel's machine (`uname -m`) in OCI's names.
    public static var host: OCIPlatform {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: name.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return linux(machine: machine)
    }

    /// Linux on a kernel machine name (`x86_64` → amd64, `aarch64` → arm64/v8, `armv7l` → arm/v7).
    public static func linux(machine: String) -> OCIPlatform {
        switch machine {
        case "x86_64": OCIPlatform(os: "linux", architecture: "amd64")
        case "aarch64", "arm64": OCIPlatform(os: "linux", architecture: "arm64", variant: "v8")
        case "armv7l", "armv7": OCIPlatform(os: "linux", architecture: "arm", variant: "v7")
        case "armv6l": OCIPlatform(os: "linux", architecture: "arm", variant: "v6")
        case "i686", "i386": OCIPlatform(os: "linux", architecture: "386")
        default: OCIPlatform(os: "linux", architecture: machine)
        }
    }

    /// Whether an image of platform `other` runs here: same OS and architecture, and the same
    /// variant when both name one (arm64's `v8` is its only one).
    public func runs(_ other: OCIPlatform) -> Bool {
        guard other.os == os, other.architecture == architecture else { return false }
        guard let variant, let theirs = other.variant else { return true }
        return variant == theirs
    }
}

/// An image manifest (OCI or Docker schema 2).
public struct OCIManifest: Sendable, Hashable, Codable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: OCIDescriptor
    public var layers: [OCIDescriptor]

    public init(config: OCIDescriptor, layers: [OCIDescriptor], mediaType: String? = OCIMediaType.ociManifest) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
    }
}

/// An image index (OCI) or manifest list (Docker).
public struct OCIIndex: Sendable, Hashable, Codable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [OCIDescriptor]

    public init(manifests: [OCIDescriptor]) {
        schemaVersion = 2
        mediaType = OCIMediaType.ociIndex
        self.manifests = manifests
    }

    /// The manifest for `platform`: the first entry that runs there (attestations, which say
    /// `unknown/unknown`, never match). Nil when there is none.
    public func manifest(for platform: OCIPlatform) -> OCIDescriptor? {
        let candidates = manifests.filter { entry in
            guard let entryPlatform = entry.platform, platform.runs(entryPlatform) else { return false }
            return entry.annotations?["vnd.docker.reference.type"] == nil
        }
        // Prefer an exact variant over an entry that names none.
        return candidates.first { $0.platform?.variant == platform.variant } ?? candidates.first
    }
}
