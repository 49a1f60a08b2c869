import RunnerCore

/// `nft`: the runner's own nftables tables (the guests' private networks).
public struct Nft: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "nft") {
        self.executable = executable
    }

    /// `nft -f -`: applies the ruleset on stdin as one transaction (all of it or nothing).
    public func apply() -> Command {
        Command(executable, ["-f", "-"])
    }

    /// `nft -j list table FAMILY NAME`: one table and its contents, as JSON.
    public func listTable(family: String, name: String) -> Command {
        Command(executable, ["-j", "list", "table", family, name])
    }

    /// `nft list table FAMILY NAME`: one table and its contents, as nft's text.
    public func showTable(family: String, name: String) -> Command {
        Command(executable, ["list", "table", family, name])
    }

    /// `nft -j list tables`: every table's family and name, as JSON.
    public func listTables() -> Command {
        Command(executable, ["-j", "list", "tables"])
    }

    /// `nft delete table FAMILY NAME`.
    public func deleteTable(family: String, name: String) -> Command {
        Command(executable, ["delete", "table", family, name])
    }
}
