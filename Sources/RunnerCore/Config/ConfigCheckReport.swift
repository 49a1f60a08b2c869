/// What `config check` prints for one file: every problem and warning with its line, the keys
/// `runner-build userdata` pins (site mode), and a verdict. Shared by `runner-agent config
/// check` and `runner-build config check`. Never holds a secret value.
public struct ConfigCheckReport: Sendable, Hashable {
    /// The lines for standard output, in order.
    public var lines: [String]
    /// How many errors (warnings not counted).
    public var errorCount: Int
    /// How many warnings.
    public var warningCount: Int

    /// Whether the file is valid (warnings allowed).
    public var isValid: Bool { errorCount == 0 }

    /// Checks `bytes` (read from `path`) with `options`.
    public static func make(_ bytes: [UInt8], path: String, options: RunnerConfig.Options) -> ConfigCheckReport {
        let (config, problems) = RunnerConfig.check(bytes, source: path, options: options)
        let warnings = config?.warnings ?? []
        let all = (problems + warnings).sorted { ($0.line ?? Int.max) < ($1.line ?? Int.max) }
        var lines = all.map { $0.located(in: path) }
        if options.pinnedByUserData, let config {
            for (key, flag) in RunnerConfig.keysPinnedByUserData(mode: config.bootstrapMode) where !config.isSet(key) {
                lines.append("\(path): \(key.name): not needed here: pinned by `runner-build userdata \(flag)`")
            }
        }
        if problems.isEmpty {
            let note = warnings.isEmpty ? "" : " (\(warnings.count == 1 ? "1 warning" : "\(warnings.count) warnings"))"
            lines.append("\(path): ok\(note)")
        }
        return ConfigCheckReport(lines: lines, errorCount: problems.count, warningCount: warnings.count)
    }
}

extension RunnerConfig {
    /// The keys `runner-build userdata` adds to the site config, with the flag that pins each:
    /// the release ref always, the bundle digest in bundle mode.
    public static func keysPinnedByUserData(mode: BootstrapMode) -> [(ConfigKey, String)] {
        var keys: [(ConfigKey, String)] = [(.bootstrapRepoRef, "--ref")]
        if mode == .bundle { keys.append((.bundleSHA256, "--bundle/--bundle-sha256")) }
        return keys
    }
}
