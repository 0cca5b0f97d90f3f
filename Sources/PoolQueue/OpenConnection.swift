#if PostgresQueue
import PostgresNIO
import Synchronization

/// The queue's open connection, whose calls in flight are abandoned all at once when it closes. A call postgres-nio never answers once the server has gone must not hold the queue's
/// loop for ever: found by the PostgreSQL-restart test, where a claim stayed suspended after
/// `pg_ctl stop -m fast` in about one run in six under load, and the pool never noticed the
/// outage. A call that finishes after its connection closed has its result dropped; what it
/// claimed is recovered when the lease expires, as after any lost connection.
final class OpenConnection: Sendable {
    let connection: PostgresConnection
    private struct State {
        var isClosed = false
        var next = 0
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    init(_ connection: PostgresConnection) {
        self.connection = connection
        connection.closeFuture.whenComplete { [self] _ in close() }
    }

    /// Runs `body` on the connection; throws ``ConnectionClosed`` when it closes first.
    func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let outcome = Outcome<T>()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let id = state.withLock { state -> Int? in
                guard !state.isClosed else { return nil }
                state.next += 1
                state.waiting[state.next] = continuation
                return state.next
            }
            guard let id else {
                continuation.resume()
                return
            }
            // Unstructured on purpose: a call that never returns must not be waited for.
            Task { [self] in
                let result: Result<T, any Error>
                do { result = .success(try await body(connection)) } catch { result = .failure(error) }
                outcome.value.withLock { $0 = result }
                state.withLock { $0.waiting.removeValue(forKey: id) }?.resume()
            }
        }
        guard let result = outcome.value.withLock({ $0 }) else { throw ConnectionClosed() }
        return try result.get()
    }

    private func close() {
        let waiting = state.withLock { state in
            state.isClosed = true
            defer { state.waiting = [:] }
            return state.waiting
        }
        for continuation in waiting.values { continuation.resume() }
    }
}

/// What a call came to, shared by the task that ran it and the caller that waits.
private final class Outcome<T: Sendable>: Sendable {
    let value = Mutex<Result<T, any Error>?>(nil)
}

/// The connection closed while a call on it was in flight.
struct ConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the connection closed" }
}
#endif
