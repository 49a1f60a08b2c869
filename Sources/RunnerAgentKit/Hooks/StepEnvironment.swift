import RunnerGuests

/// The environment of a job container's steps, merged as docker merges it: the image's `Env`,
/// under the container's own variables, under the step's; `PATH` is the step's, else the
/// container's (the image's included), else the default, with the job's `prependPath` in front.
enum StepEnvironment {
    /// The container-level environment: the image's `Env` entries (`NAME=VALUE`, later ones
    /// win; an entry without `=` is an empty value), then `container` on top.
    static func container(image: [String], container: [String: String]) -> [String: String] {
        var environment: [String: String] = [:]
        for entry in image {
            guard let equals = entry.firstIndex(of: "=") else {
                if !entry.isEmpty { environment[entry] = "" }
                continue
            }
            let name = String(entry[..<equals])
            if !name.isEmpty { environment[name] = String(entry[entry.index(after: equals)...]) }
        }
        for (key, value) in container { environment[key] = value }
        return environment
    }

    /// One step's environment: `container` (from the state), `step` on top, and `PATH` with
    /// `prependPath` in front (the runner's `GITHUB_PATH` additions, first one first).
    static func step(container: [String: String], step: [String: String], prependPath: [String]) -> [String: String] {
        var environment = container
        for (key, value) in step { environment[key] = value }
        let basePath = step["PATH"] ?? container["PATH"] ?? GuestDefaults.path
        environment["PATH"] = prependPath.isEmpty ? basePath : (prependPath + [basePath]).joined(separator: ":")
        return environment
    }
}
