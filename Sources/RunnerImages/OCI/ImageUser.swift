import RunnerCore

/// The user an image's steps and services run as: docker's `USER` (`name`, `uid`, `name:group`,
/// `uid:gid`) resolved in the image's own `/etc/passwd` and `/etc/group`, as ids inside the
/// guest's user namespace.
public struct ImageUser: Codable, Sendable, Hashable {
    public var uid: UInt32
    public var gid: UInt32
    /// Supplementary groups (the groups of `/etc/group` that list the user by name).
    public var groups: [UInt32]
    /// The user's home (from `/etc/passwd`; `/` for a uid it does not list, as docker does).
    public var home: String

    public init(uid: UInt32, gid: UInt32, groups: [UInt32] = [], home: String = "/") {
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.home = home
    }

    /// Root: what an image without `USER` runs as.
    public static let root = ImageUser(uid: 0, gid: 0, groups: [], home: "/root")

    /// The highest id a guest has (its user namespace maps 65,536 ids).
    public static let maximumID: UInt32 = 65535

    /// Resolves `spec` (the image's `User`) against the image's `passwd` and `group` texts (nil:
    /// the file could not be read safely). A name the files do not list, or an id outside the
    /// guest's range, is refused naming the image.
    public static func resolve(
        _ spec: String?, passwd: String?, group: String?, image: String
    ) throws(RunnerError) -> ImageUser {
        let spec = (spec ?? "").trimmedWhitespace
        let users = passwd.map(parsePasswd) ?? []
        let groups = group.map(parseGroup) ?? []
        if spec.isEmpty {
            let rootEntry: PasswdEntry? = users.first(where: { $0.uid == 0 })
            return ImageUser(uid: 0, gid: 0, groups: [], home: rootEntry.map(\.home) ?? "/root")
        }
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let userPart = parts[0]
        let groupPart = parts.count > 1 ? parts[1] : nil
        func refuse(_ problem: String) -> RunnerError {
            RunnerError(
                .invalidInput, input: "\(image) USER \(spec)", problem: problem,
                fix: "use a user the image's /etc/passwd lists, or numeric ids (uid:gid) up to \(maximumID)")
        }
        let uid: UInt32
        var gid: UInt32
        var home = "/"
        var name: String?
        if let number = UInt32(userPart) {
            uid = number
            let entry = users.first { $0.uid == number }
            gid = entry?.gid ?? 0
            home = entry?.home ?? "/"
            name = entry?.name
        } else {
            guard let entry = users.first(where: { $0.name == userPart }) else {
                throw refuse(
                    passwd == nil
                        ? "the image's /etc/passwd cannot be read safely (missing, a link, or not a regular file)"
                        : "no such user in the image's /etc/passwd")
            }
            uid = entry.uid
            gid = entry.gid
            home = entry.home
            name = entry.name
        }
        if let groupPart {
            if let number = UInt32(groupPart) {
                gid = number
            } else if let entry = groups.first(where: { $0.name == groupPart }) {
                gid = entry.gid
            } else {
                throw refuse("no such group in the image's /etc/group")
            }
        }
        guard uid <= maximumID, gid <= maximumID else { throw refuse("is outside the guest's ids (0-\(maximumID))") }
        var supplementary: [UInt32] = []
        if let name, groupPart == nil {
            for entry in groups where entry.members.contains(name) && entry.gid != gid && entry.gid <= maximumID {
                if !supplementary.contains(entry.gid) { supplementary.append(entry.gid) }
            }
        }
        return ImageUser(uid: uid, gid: gid, groups: supplementary, home: home.isEmpty ? "/" : home)
    }

    struct PasswdEntry {
        var name: String
        var uid: UInt32
        var gid: UInt32
        var home: String
    }

    struct GroupEntry {
        var name: String
        var gid: UInt32
        var members: [String]
    }

    /// `name:password:uid:gid:gecos:home:shell` lines; malformed ones are skipped.
    static func parsePasswd(_ text: String) -> [PasswdEntry] {
        text.split(whereSeparator: { $0 == "\n" }).compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 7, let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) else { return nil }
            return PasswdEntry(name: String(fields[0]), uid: uid, gid: gid, home: String(fields[5]))
        }
    }

    /// `name:password:gid:member,member` lines; malformed ones are skipped.
    static func parseGroup(_ text: String) -> [GroupEntry] {
        text.split(whereSeparator: { $0 == "\n" }).compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 4, let gid = UInt32(fields[2]) else { return nil }
            let members = fields[3].split(separator: ",").map { String($0).trimmedWhitespace }
            return GroupEntry(name: String(fields[0]), gid: gid, members: members)
        }
    }
}
