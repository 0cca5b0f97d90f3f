/// A point on the monotonic clock (`CLOCK_MONOTONIC`, shared by every process on the host),
/// in nanoseconds. Pure decision code takes it as an argument and never reads a clock.
public struct PoolInstant: Comparable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// The current monotonic time.
    public static var now: PoolInstant { PoolInstant(nanoseconds: Posix.monotonicNanoseconds()) }

    public static func < (lhs: PoolInstant, rhs: PoolInstant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Saturating: a duration beyond the clock's range gives its first or last instant, so a
    /// deadline far in the future is "never" rather than a wrapped instant in the past.
    public static func + (lhs: PoolInstant, rhs: Duration) -> PoolInstant {
        let delta = rhs.nanoseconds
        if delta < 0 {
            let magnitude = delta.magnitude
            return PoolInstant(nanoseconds: lhs.nanoseconds >= magnitude ? lhs.nanoseconds - magnitude : 0)
        }
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(UInt64(delta))
        return PoolInstant(nanoseconds: overflow ? .max : sum)
    }

    /// The time from `other` to `self` (negative when `other` is later).
    public func duration(since other: PoolInstant) -> Duration {
        if nanoseconds >= other.nanoseconds { return .nanoseconds(Int64(clamping: nanoseconds - other.nanoseconds)) }
        return .nanoseconds(-Int64(clamping: other.nanoseconds - nanoseconds))
    }

    public var description: String { "\(Double(nanoseconds) / 1e9)s" }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating at `Int64`'s range (about 292 years), so a
    /// huge `Duration` given through the Swift API is "forever", never an overflow trap.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, carry) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if carry { return seconds < 0 ? .min : .max }
        return sum
    }

    /// A duration of `seconds`, saturating at the range of ``nanoseconds``; NaN is zero.
    static func saturating(seconds: Double) -> Duration {
        guard !seconds.isNaN else { return .zero }
        let nanoseconds = seconds * 1e9
        if nanoseconds >= 9.2e18 { return .nanoseconds(Int64.max) }
        if nanoseconds <= -9.2e18 { return .nanoseconds(Int64.min) }
        return .nanoseconds(Int64(nanoseconds.rounded()))
    }

    /// The duration in seconds as a floating-point number.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
