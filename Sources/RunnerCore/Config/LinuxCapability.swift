/// Linux capability names and numbers (`<linux/capability.h>`), for `RUNNER_GUEST_CAP_ADD` and
/// the capability bounding set of the units the runner starts in guests.
public enum LinuxCapability {
    /// `CAP_X` → its number.
    public static let numbers: [String: Int] = [
        "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
        "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
        "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
        "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18,
        "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
        "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28,
        "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32,
        "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37,
        "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
    ]

    /// `CAP_X` for `X`, `cap_x` or `CAP_X` (docker takes all three); nil for an unknown name.
    public static func canonicalName(_ text: String) -> String? {
        let upper = text.uppercased()
        let name = upper.hasPrefix("CAP_") ? upper : "CAP_" + upper
        return numbers[name] == nil ? nil : name
    }

    /// The canonical name of one capability a job's `--cap-add` asks for, when the admin allows
    /// it (`RUNNER_GUEST_CAP_ADD`, given as `allowed`). `input` names the request in errors
    /// (e.g. `service redis options: --cap-add X`). The hook checks a job's options with it and
    /// the privileged helper checks the start request again: the hook is the runner user's.
    public static func checkAdded(_ text: String, allowed: [String], input: String, configFile: String)
        throws(RunnerError) -> String
    {
        guard let name = canonicalName(text) else {
            throw RunnerError(
                .invalidInput, input: input,
                problem: text.uppercased() == "ALL"
                    ? "is refused on this runner (it is --privileged in all but name)"
                    : "is not a Linux capability name",
                fix: "add single capabilities the admin allows (RUNNER_GUEST_CAP_ADD), e.g. --cap-add NET_ADMIN")
        }
        guard allowed.contains(name) else {
            throw RunnerError(
                .permission, input: input, problem: "is not allowed on this runner",
                fix: "remove it from the job's options, or have the admin add \(name.dropFirst(4)) to "
                    + "RUNNER_GUEST_CAP_ADD in \(configFile)")
        }
        return name
    }
}
