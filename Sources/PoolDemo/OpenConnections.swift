import NIOCore
import Synchronization

/// The worker's open connections, so that stopping can wait for the requests in flight.
final class OpenConnections: Sendable {
    private struct State {
        /// Accepted, no request read yet: its first request is most likely on the wire.
        var fresh: [ObjectIdentifier: any Channel] = [:]
        var busy: [ObjectIdentifier: any Channel] = [:]
        /// Kept alive between requests.
        var idle: [ObjectIdentifier: any Channel] = [:]
        var draining = false
    }

    /// How long a draining worker waits for the next request of a quiet connection (just
    /// accepted, or idle between keep-alive requests) before closing it.
    static let freshGrace: Duration = .milliseconds(250)
    private let state = Mutex(State())

    func opened(_ channel: any Channel) {
        state.withLock { $0.fresh[ObjectIdentifier(channel)] = channel }
    }

    func closed(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        state.withLock { state in
            state.fresh[key] = nil
            state.idle[key] = nil
            state.busy[key] = nil
        }
    }

    /// Marks the connection busy; returns false when draining (answer, then close).
    func requestStarted(_ channel: any Channel) -> Bool {
        let key = ObjectIdentifier(channel)
        return state.withLock { state in
            state.fresh[key] = nil
            state.idle[key] = nil
            state.busy[key] = channel
            return !state.draining
        }
    }

    /// Marks the connection idle again; returns false when draining (close it after this response).
    func requestFinished(_ channel: any Channel) -> Bool {
        state.withLock { state in
            // Not busy any more means it closed while its request ran (the client gave up
            // waiting for a slow job): it must not come back as idle, or a drain would wait
            // for it forever.
            guard state.busy.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return false }
            if state.draining { return false }
            state.idle[ObjectIdentifier(channel)] = channel
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
            let (busy, quiet) = state.withLock { ($0.busy.count, Array($0.fresh.values) + Array($0.idle.values)) }
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
                if self.state.withLock({ $0.busy[ObjectIdentifier(channel)] == nil }) { channel.close(promise: nil) }
            }
        }
    }
}
