import RunnerCore

/// The `nosuid,nodev` bind mounts the installer puts on the runner's work directory and its
/// externals directory: a setuid file or a device node a job leaves there is inert for the
/// runner user. Each is a systemd mount unit binding the directory onto itself, enabled, and
/// required by `runner.service` through a `RequiresMountsFor=` drop-in.
public enum MountUnits {
    /// The mount options every such directory must show in `/proc/self/mountinfo`.
    public static let requiredOptions = ["nosuid", "nodev"]

    /// The unit name systemd derives from `path` (`systemd-escape --path --suffix=mount`).
    public static func unitName(for path: String) -> String { escapePath(path) + ".mount" }

    /// `systemd-escape --path PATH`: the path without duplicate, leading and trailing slashes,
    /// `/` as `-`, a leading `.` and every byte outside `[A-Za-z0-9:_.]` as `\xNN`; `/` alone is `-`.
    public static func escapePath(_ path: String) -> String {
        let components = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        guard !components.isEmpty else { return "-" }
        let simplified = Array(components.joined(separator: "/").utf8)
        var escaped = ""
        for (index, byte) in simplified.enumerated() {
            let isAlphanumeric =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
            if byte == UInt8(ascii: "/") {
                escaped.append("-")
            } else if isAlphanumeric || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "_")
                || (byte == UInt8(ascii: ".") && index > 0)
            {
                escaped.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let digits = Array("0123456789abcdef")
                escaped += "\\x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xf)])
            }
        }
        return escaped
    }

    /// Refuses a path a unit file cannot carry as is (not absolute, `..`, whitespace, control
    /// characters, quotes, backslashes or `%`, which systemd would read as specifiers).
    public static func check(_ path: String) throws(RunnerError) {
        let bad = path.unicodeScalars.contains {
            $0.value < 0x21 || $0.value == 0x7f || "\"'\\%".unicodeScalars.contains($0)
        }
        guard path.hasPrefix("/"), !bad, !path.split(separator: "/").contains("..") else {
            throw RunnerError(
                .invalidConfig, input: path,
                problem: "cannot be a mount point of a unit (not absolute, or has .., spaces, quotes, \\ or %)",
                fix: "set RUNNER_WORK_DIR to a plain absolute path such as /var/lib/runner/work")
        }
    }

    /// The mount unit binding `path` onto itself with `nosuid,nodev`. Ordered after the
    /// installer (which makes the directory and replaces the runner package) and before
    /// `runner.service`; no default dependencies (they would order it before local-fs.target,
    /// which the installer's network wait comes after).
    public static func unitText(for path: String) -> String {
        """
        # Written by runner-agent install: \(path) without setuid files or device nodes, so
        # nothing a job leaves there runs with more privileges than the runner user's.
        [Unit]
        Description=runner appliance: \(path) nosuid,nodev
        DefaultDependencies=no
        Conflicts=umount.target
        After=runner-install.service
        Before=runner.service umount.target

        [Mount]
        What=\(path)
        Where=\(path)
        Type=none
        Options=bind,nosuid,nodev

        [Install]
        WantedBy=multi-user.target

        """
    }

    /// `runner.service.d/10-mounts.conf`: the runner starts only with these mounts in place.
    public static func dropInText(for paths: [String]) -> String {
        """
        # Written by runner-agent install: the runner starts only once its work and externals
        # directories are mounted nosuid,nodev (see the .mount units next to runner.service).
        [Unit]
        RequiresMountsFor=\(paths.joined(separator: " "))

        """
    }

    /// One mount of `/proc/self/mountinfo`: its mount point and its per-mount and super-block options.
    public struct MountInfo: Sendable, Hashable {
        public var mountPoint: String
        public var options: Set<String>
    }

    /// Parses `/proc/self/mountinfo` (mount point field 5, options field 6, super options after `-`).
    public static func parseMountInfo(_ text: String) -> [MountInfo] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count >= 6 else { return nil }
            var options = Set(fields[5].split(separator: ",").map(String.init))
            if let dash = fields.firstIndex(of: "-"), dash + 3 < fields.count {
                options.formUnion(fields[dash + 3].split(separator: ",").map(String.init))
            }
            return MountInfo(mountPoint: unescapeMountInfo(String(fields[4])), options: options)
        }
    }

    /// Undoes mountinfo's octal escapes (`\040` for a space, …).
    static func unescapeMountInfo(_ text: String) -> String {
        var bytes: [UInt8] = []
        let raw = Array(text.utf8)
        var index = 0
        while index < raw.count {
            if raw[index] == UInt8(ascii: "\\"), index + 3 < raw.count,
                let value = UInt8(String(decoding: raw[(index + 1)...(index + 3)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(raw[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The options of the mount `path` lies on: the deepest mount point that is `path` or a
    /// parent of it, the last of those (a later mount on the same point hides earlier ones).
    /// Nil when none is found.
    public static func options(of path: String, in mounts: [MountInfo]) -> Set<String>? {
        let normalized = "/" + path.split(separator: "/").joined(separator: "/")
        var best: MountInfo?
        for mount in mounts
        where mount.mountPoint == "/" || normalized == mount.mountPoint || normalized.hasPrefix(mount.mountPoint + "/")
        {
            if mount.mountPoint.count >= (best?.mountPoint.count ?? 0) { best = mount }
        }
        return best?.options
    }

    /// Whether `path` lies on a mount with `nosuid` and `nodev`.
    public static func isNosuidNodev(_ path: String, mountInfo: String) -> Bool {
        guard let options = options(of: path, in: parseMountInfo(mountInfo)) else { return false }
        return requiredOptions.allSatisfy(options.contains)
    }
}
