/// Which process group and session a child starts in.
public enum ProcessGrouping: Sendable, Hashable {
    /// Ours: terminal signals (Ctrl-C) reach it as they reach us.
    case sameGroup
    /// A new process group it leads (its PID is the group's ID): terminal signals reach us only,
    /// we forward them, and the group can be signalled as a whole.
    case newProcessGroup
    /// A new session it leads (`setsid`): a daemon that outlives us, or a child whose whole
    /// tree we may tear down without touching ours.
    case newSession
}
