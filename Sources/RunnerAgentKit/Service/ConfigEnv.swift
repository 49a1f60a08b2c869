import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Loads `/etc/runner/config.env` through the config model (``RunnerConfig``: systemd's
/// `EnvironmentFile=` syntax, known keys only, every value's form and default, secret files
/// 0600) for one command. The settings types (``ServiceSettings``, ``InstallSettings``,
/// ``HookSettings``) are built from the validated config's typed accessors and do not check
/// again what it checked.
enum ConfigEnv {
    /// What each command needs checked.
    enum Purpose {
        /// `service` and `doctor`: a credential is required, its secret files must be 0600.
        case service
        /// `install`: the credential is the service's business.
        case install
    }

    /// The validated config at `path` (default: ``HostLayout/configFile``); its
    /// ``RunnerConfig/warnings`` go to stderr (the journal).
    static func load(_ path: String?, layout: HostLayout, for purpose: Purpose) throws(RunnerError) -> RunnerConfig {
        let options: RunnerConfig.Options
        switch purpose {
        case .service:
            options = RunnerConfig.Options(secretFiles: layout, requireCredential: true, requireBootstrap: false)
        case .install:
            options = RunnerConfig.Options(secretFiles: nil, requireCredential: false, requireBootstrap: false)
        }
        let file = path ?? layout.configFile
        guard FilePaths.exists(file) else {
            throw RunnerError(
                .invalidConfig, input: file, problem: "does not exist",
                fix: "write it (cloud-init does, from the user-data); `runner-build config example` documents every key"
            )
        }
        guard access(file, R_OK) == 0 else {
            throw RunnerError(.permission, input: file, problem: "is not readable", fix: "run as root")
        }
        let config = try RunnerConfig.load(path: file, layout: layout, options: options)
        // Valid but probably not meant (`KEY=value # note`): say so where the journal shows it.
        for warning in config.warnings { StandardError.write(warning.located(in: file) + "\n") }
        return config
    }
}
