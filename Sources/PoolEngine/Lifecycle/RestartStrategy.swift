/// Whether a worker that ended on its own comes back.
public enum RestartPolicy: Hashable, Sendable, Codable {
    /// The slot stops for good after its first exit.
    case never
    /// The slot always comes back (after the backoff delay).
    case always
    /// The slot comes back at most `maxRestarts` times within any sliding `window`, then is given up on.
    case limited(maxRestarts: Int, window: Duration)
}

/// How long to wait before a restart: exponential, capped, and forgotten after a stable run.
///
/// The first exit after a stable run restarts at once, so a one-off crash costs only the spawn;
/// each further exit within `resetAfter` of becoming ready waits `initial × factor^(n-1)`, at most
/// `maximum`. A worker that never became ready always waits at least `initial`, so a boot failure
/// never loops without a pause.
public struct RestartBackoff: Hashable, Sendable, Codable {
    public var initial: Duration
    public var factor: Double
    public var maximum: Duration
    public var resetAfter: Duration

    public init(
        initial: Duration = .milliseconds(100),
        factor: Double = 2,
        maximum: Duration = .seconds(30),
        resetAfter: Duration = .seconds(10)
    ) {
        self.initial = initial
        self.factor = factor
        self.maximum = maximum
        self.resetAfter = resetAfter
    }

    /// The default: 100 ms, doubling, capped at 30 s, reset after 10 s of ready uptime.
    public static let standard = RestartBackoff()

    /// The delay before the restart that follows `rapidExits` exits in quick succession (0 = the first).
    public func delay(afterRapidExits rapidExits: Int, isBootFailure: Bool) -> Duration {
        var delay: Duration = .zero
        if rapidExits > 0 {
            let scaled = initial.seconds * integerPower(factor, Double(rapidExits - 1))
            delay = scaled >= maximum.seconds ? maximum : .saturating(seconds: scaled)
        }
        if isBootFailure && delay < initial { delay = min(initial, maximum) }
        return delay
    }
}

/// A group's restart strategy: the policy and its backoff. Decisions are taken per worker slot.
public struct RestartStrategy: Hashable, Sendable, Codable {
    public var policy: RestartPolicy
    public var backoff: RestartBackoff

    public init(policy: RestartPolicy, backoff: RestartBackoff = .standard) {
        self.policy = policy
        self.backoff = backoff
    }

    /// Restart after every exit, with backoff (the default).
    public static func always(backoff: RestartBackoff = .standard) -> RestartStrategy {
        RestartStrategy(policy: .always, backoff: backoff)
    }

    /// Never restart: the first exit stops the slot for good.
    public static let never = RestartStrategy(policy: .never)

    /// Restart at most `maxRestarts` times within any `window`, then give the slot up.
    public static func limited(maxRestarts: Int, window: Duration, backoff: RestartBackoff = .standard)
        -> RestartStrategy
    {
        RestartStrategy(policy: .limited(maxRestarts: maxRestarts, window: window), backoff: backoff)
    }
}

/// `base` to an integral power, capped once past 1e12: the exponential backoffs (restarts, the
/// PostgreSQL queue's retries). Avoids importing libm for one call.
package func integerPower(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 {
        result *= base
        remaining -= 1
        if result > 1e12 { break }
    }
    return result
}
