import Synchronization

/// Whether anyone looks at the pool's live figures: the hosting console reading `snapshot()`,
/// a `status` request, an attached console or `pooltop logs --follow` streaming events.
/// The watcher samples /proc at full rate only then (see ``SamplingSchedule``): an idle pool
/// nobody looks at costs next to nothing. Lock-free: `snapshot()` may be called at any rate.
final class ViewerTracker: Sendable {
    /// A look keeps the pool viewed this long (the console refreshes far more often).
    static let window: UInt64 = 3_000_000_000

    /// Monotonic nanoseconds until which the last look counts.
    private let viewedUntil = Atomic<UInt64>(0)
    /// Event streams open now.
    private let streams = Atomic<Int>(0)

    /// Notes a look; true when nobody was looking before, so the caller has the watcher sample now.
    func noteView() -> Bool {
        let now = Posix.monotonicNanoseconds()
        let before = viewedUntil.exchange(now + Self.window, ordering: .relaxed)
        return before < now && streams.load(ordering: .relaxed) == 0
    }

    /// A stream of events began; true when nobody was looking before.
    func streamStarted() -> Bool {
        let now = Posix.monotonicNanoseconds()
        let open = streams.wrappingAdd(1, ordering: .relaxed).newValue
        return open == 1 && viewedUntil.load(ordering: .relaxed) < now
    }

    func streamEnded() {
        streams.wrappingSubtract(1, ordering: .relaxed)
    }

    var isViewed: Bool {
        streams.load(ordering: .relaxed) > 0 || viewedUntil.load(ordering: .relaxed) > Posix.monotonicNanoseconds()
    }
}
