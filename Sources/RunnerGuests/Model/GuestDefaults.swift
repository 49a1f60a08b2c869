/// Defaults shared by the hook and the helper.
public enum GuestDefaults {
    /// The PATH for images that define none (`actions/runner#3210`).
    public static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}
