/// This process and its host, for code outside the engine that must name them (the
/// PostgreSQL queue's claims and fleet rows) without calling the C library itself.
public enum PoolHost {
    /// The host's name (`uname -n`).
    public static var name: String { Posix.hostName() }
    /// This process's id.
    public static var processID: Int32 { Posix.processID }

    /// The value of an environment variable of this process, nil when unset.
    public static func environment(_ name: String) -> String? { Posix.getenv(name) }
}

extension PoolHost {
    /// The wall clock, in seconds since the epoch (for schedules that name times of day).
    public static var wallClock: Double { Posix.wallClockSeconds() }
}

extension PoolHost {
    /// pooltop's version, for the fleet view (CHANGELOG.md has no release yet).
    public static let version = "0.1.0-dev"
}
