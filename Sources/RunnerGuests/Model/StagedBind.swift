/// What the guest record keeps about a staged bind source.
public struct StagedBind: Codable, Sendable, Hashable {
    /// The bind's position in the start request (its staging entry's name).
    public var index: Int
    /// The caller's source path (for messages and the ownership walk's fallback).
    public var source: String
    public var readOnly: Bool
    public var isDirectory: Bool
    /// The source's path relative to the work directory, when it was resolved from it: the
    /// ownership walk hands what steps leave there to the work owner.
    public var workRelative: String?
    /// The staged object's device and inode (the walk checks the staging mount is still it).
    public var device: UInt64
    public var inode: UInt64
}
