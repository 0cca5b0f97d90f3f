import NIOCore
import PoolEngine

/// The worker's open connections, so that stopping can wait for the requests in flight.
final class OpenConnections: Sendable {
    private enum Phase {
        /// Accepted, no request read yet: its first request is most likely on the wire.
        case fresh
        case busy
        /// Kept alive between requests.
        case idle
    }

    private struct Entry {
        var channel: any Channel
        var phase: Phase
    }

    /// One table, one lookup per request and per answer: this runs for every request.
    private struct State {
        var open: [ObjectIdentifier: Entry] = [:]
        var draining = false
    }

    /// How long a draining worker waits for the next request of a quiet connection (just
    /// accepted, or idle between keep-alive requests) before closing it.
    static let freshGrace: Duration = .milliseconds(250)
    private let state = Mutex(State())

    func opened(_ channel: any Channel) {
        state.withLock { $0.open[ObjectIdentifier(channel)] = Entry(channel: channel, phase: .fresh) }
    }

    func closed(_ channel: any Channel) {
        _ = state.withLock { $0.open.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Marks the connection busy; returns false when draining (answer, then close).
    func requestStarted(_ channel: any Channel) -> Bool {
        state.withLock { state in
            if let index = state.open.index(forKey: ObjectIdentifier(channel)) {
                state.open.values[index].phase = .busy
            } else {
                state.open[ObjectIdentifier(channel)] = Entry(channel: channel, phase: .busy)
            }
            return !state.draining
        }
    }

    /// Marks the connection idle again; returns false when draining (close it after this response).
    func requestFinished(_ channel: any Channel) -> Bool {
        state.withLock { state in
            // Not busy any more means it closed while its request ran (the client gave up
            // waiting for a slow job): it must not come back as idle, or a drain would wait
            // for it forever.
            guard let index = state.open.index(forKey: ObjectIdentifier(channel)), state.open.values[index].phase == .busy else {
                return false
            }
            if state.draining {
                // It closes after this answer; nothing is left to wait for.
                state.open.remove(at: index)
                return false
            }
            state.open.values[index].phase = .idle
            return true
        }
    }

    /// Gives idle and fresh connections a moment to send a request (answered with `connection:
    /// close`), closes the ones still quiet after it, and waits until every busy one has answered
    /// and closed.
    ///
    /// Closing an idle keep-alive connection at once races its client: a request already on its
    /// way meets a reset (wrk counted 41 read errors over six restarts under load). Within the
    /// grace a busy client's next request arrives and is answered, so the close is clean; a
    /// client idle for the whole grace is the only one left to the race.
    func drain() async {
        state.withLock { $0.draining = true }
        let started = ContinuousClock.now
        var quietClosed = false
        while true {
            let (busy, quiet) = state.withLock { state in
                (state.open.values.filter { $0.phase == .busy }.count, state.open.values.filter { $0.phase != .busy }.map(\.channel))
            }
            if busy == 0 && quiet.isEmpty { return }
            if !quietClosed && ContinuousClock.now - started >= Self.freshGrace {
                closeIfNotBusy(quiet)
                quietClosed = true
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func closeIfNotBusy(_ channels: [any Channel]) {
        for channel in channels {
            // Checked again on the connection's own loop: a request that arrived meanwhile is answered first.
            channel.eventLoop.execute {
                if self.state.withLock({ $0.open[ObjectIdentifier(channel)]?.phase != .busy }) { channel.close(promise: nil) }
            }
        }
    }
}
