/// A point on the monotonic clock (`CLOCK_MONOTONIC`, shared by every process on the host),
/// in nanoseconds. Pure decision code takes it as an argument and never reads a clock.
public struct PoolInstant: Comparable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// The current monotonic time.
    public static var now: PoolInstant { PoolInstant(nanoseconds: Posix.monotonicNanoseconds()) }

    public static func < (lhs: PoolInstant, rhs: PoolInstant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: PoolInstant, rhs: Duration) -> PoolInstant {
        let delta = rhs.nanoseconds
        if delta < 0 { return PoolInstant(nanoseconds: lhs.nanoseconds &- UInt64(-delta)) }
        return PoolInstant(nanoseconds: lhs.nanoseconds &+ UInt64(delta))
    }

    /// The time from `other` to `self` (negative when `other` is later).
    public func duration(since other: PoolInstant) -> Duration {
        if nanoseconds >= other.nanoseconds { return .nanoseconds(Int64(nanoseconds - other.nanoseconds)) }
        return .nanoseconds(-Int64(other.nanoseconds - nanoseconds))
    }

    public var description: String { "\(Double(nanoseconds) / 1e9)s" }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating far beyond any timeout we use).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The duration in seconds as a floating-point number.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
