import RunnerSystem

/// A bind source after ``GuestPolicy/check(_:)``: the bind as recorded (the caller's path,
/// read-only forced for externals) and the descriptor of exactly what the path reached.
package struct CheckedBind: Sendable {
    var bind: GuestBind
    /// Nil for an anonymous volume.
    var descriptor: PathDescriptor?
    /// The source's path relative to the work directory, when it was resolved from it.
    var workRelative: String?
}
