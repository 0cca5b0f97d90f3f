/// Where a pool's lasting files live (post-mortems): `$XDG_STATE_HOME/pooltop/<pool>/`, else
/// `/var/lib/pooltop/<pool>/` for root and `~/.local/state/pooltop/<pool>/` for others. Checked
/// as the runtime directory is: ours, 0700, nobody else may write to it.
public enum StateDirectory {
    public static var base: String {
        if let xdg = Posix.getenv("XDG_STATE_HOME"), xdg.hasPrefix("/") { return "\(xdg)/pooltop" }
        if Posix.userID == 0 { return "/var/lib/pooltop" }
        let home = Posix.getenv("HOME").flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp/pooltop-state-\(Posix.userID)"
        return "\(home)/.local/state/pooltop"
    }

    public static func path(pool: String) -> String { "\(base)/\(pool)" }

    /// Creates the directories that are missing (0700) and checks the pool's.
    static func claim(pool: String) throws -> String {
        let base = self.base
        // The parents are made if missing; only ours are checked (`/var/lib` is root's anyway).
        var parent = ""
        for component in base.split(separator: "/").dropLast() {
            parent += "/\(component)"
            if !Posix.isDirectory(path: parent) { try Posix.makeDirectory(parent, mode: 0o700) }
        }
        try RuntimeDirectory.checkOwned(base, creating: true, what: "state directory")
        let directory = path(pool: pool)
        try RuntimeDirectory.checkOwned(directory, creating: true, what: "state directory")
        return directory
    }
}
