import NIOCore
import Synchronization

/// The control socket's open connections, capped so that a flood of idle local connections
/// cannot use up the watcher's descriptors, while an operator still gets through.
///
/// At the cap a new connection takes the place of the oldest idle one (connected, with no
/// request being answered and no event stream): a flood then only churns among its own
/// connections, and a `status` or `stop` sent on connecting is answered long before the
/// flood makes it the oldest. When every connection is busy, the new one is refused with a
/// `busy` answer.
final class ControlConnections: Sendable {
    /// The most control connections open at once (`docs/reliability.md`).
    static let limit = 256

    private struct Entry {
        var channel: any Channel
        var opened: UInt64
        var isBusy = false
    }

    private struct State: ~Copyable {
        var entries: [ObjectIdentifier: Entry] = [:]
        var next: UInt64 = 0
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int = ControlConnections.limit) {
        self.limit = limit
    }

    enum Admission {
        case admitted
        /// Admitted in place of this idle connection, which the caller closes.
        case admittedEvicting(any Channel)
        /// Every connection is busy.
        case refused
    }

    /// Registers a new connection, making room for it if it can.
    func admit(_ channel: any Channel) -> Admission {
        state.withLock { state -> Admission in
            var evicted: (any Channel)?
            if state.entries.count >= limit {
                guard let oldest = state.entries.filter({ !$0.value.isBusy }).min(by: { $0.value.opened < $1.value.opened }) else {
                    return .refused
                }
                state.entries.removeValue(forKey: oldest.key)
                evicted = oldest.value.channel
            }
            state.next += 1
            state.entries[ObjectIdentifier(channel)] = Entry(channel: channel, opened: state.next)
            return evicted.map { .admittedEvicting($0) } ?? .admitted
        }
    }

    /// Whether a connection is answering a request or streaming events (not to be evicted).
    func setBusy(_ channel: any Channel, _ busy: Bool) {
        state.withLock { $0.entries[ObjectIdentifier(channel)]?.isBusy = busy }
    }

    func remove(_ channel: any Channel) {
        _ = state.withLock { $0.entries.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    var count: Int { state.withLock { $0.entries.count } }
}
