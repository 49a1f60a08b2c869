extension RunnerConfig {
    /// The documented example config.env that `runner-build config example` prints: every key
    /// with its description, form and default. The GitHub URL, a credential and the appliance
    /// repository are set (so the example validates and renders); every other key is
    /// commented out at its example value.
    public static var example: String {
        let sections: [(String, [ConfigKey])] = [
            ("Where and how the runner registers", [.githubURL, .name, .labels, .group, .ephemeral, .noDefaultLabels]),
            ("The runner process", [.workDirectory, .user]),
            (
                "Credentials: exactly one kind. Prefer the _FILE forms: a path to a 0600 file, so the secret"
                    + " stays out of config.env",
                [
                    .registrationToken, .registrationTokenFile, .jitConfig, .jitConfigFile, .pat, .patFile, .appID,
                    .appInstallationID, .appPrivateKeyFile,
                ]
            ),
            (
                "The GitHub runner release (default: what the bundle pins)",
                [.runnerVersion, .tarballURL, .tarballSHA256]
            ),
            (
                "The appliance release bootstrap.sh installs (runner-build userdata pins the ref and digest)",
                [.bundleURL, .bundleSHA256, .bootstrapMode, .bootstrapRepoURL, .bootstrapRepoRef]
            ),
            (
                "Job containers (nspawn guests)",
                [
                    .images, .defaultImage, .imageAliases, .requireJobContainer, .allowDockerSock, .guestMountAllow,
                    .guestUserNamespace,
                    .guestCapAdd, .guestNetwork, .guestBlockedNets, .jobMemoryMax, .jobCPUs, .jobTasksMax,
                ]
            ),
            (
                "Registry images (pulled for job containers)",
                [.imagePull, .imageCacheMax, .registries, .registryMirrors, .registryAuthFile]
            ),
            ("Proxy", [.httpProxy, .httpsProxy, .noProxy]),
        ]
        let active: Set<String> = [
            ConfigKey.githubURL.name, ConfigKey.registrationToken.name, ConfigKey.bootstrapRepoURL.name,
        ]
        var text = """
            # /etc/runner/config.env: the runner appliance's configuration (mode 0600, owner root).
            #
            # systemd reads it (EnvironmentFile=) and so does runner-agent, with the same rules: one
            # KEY=value per line; lines starting with # or ; are comments (a # after a value is part of
            # the value); a value with spaces or quotes goes in double quotes, with \\" \\\\ \\` and \\$
            # escaped; no `export`, no ${VAR} expansion. Unknown keys and duplicate keys are errors.
            # Check a site file (the --config of `runner-build userdata`) with `runner-build config
            # check FILE`, a host's config.env with `runner-agent config check`.

            """
        for (title, keys) in sections {
            text += "\n## \(title)\n"
            for key in keys {
                text += "\n# \(key.summary)\n# Form: \(key.kind.description)."
                if let value = key.defaultValue { text += " Default: \(value)." }
                if key.isSecret { text += " Secret: never logged." }
                text += "\n"
                let line = EnvironmentFile.line(key: key.name, value: key.example)
                text += active.contains(key.name) ? line + "\n" : "#" + line + "\n"
            }
        }
        return text
    }
}
