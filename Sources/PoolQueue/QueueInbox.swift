#if PostgresQueue
import Synchronization

/// What the queue's loop reacts to.
enum QueueEvent: Sendable {
    /// A notification said a queue of ours has a claimable job.
    case notified
    /// Time to poll, renew leases and tidy up.
    case tick
    /// A job ended on its job worker.
    case finished(ClaimedJob, JobOutcome)
    /// The worker was asked to stop.
    case stop
}

/// Events for the queue's loop, taken all at once: while the loop waits on the database, the
/// outcomes of many jobs gather here and are written back in one statement.
final class QueueInbox: Sendable {
    private let events = Mutex<[QueueEvent]>([])
    private let signal: AsyncStream<Void>.Continuation
    /// Yields when events may be waiting; one wake stands for any number of posts.
    let wakes: AsyncStream<Void>

    init() {
        (wakes, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func post(_ event: QueueEvent) {
        events.withLock { $0.append(event) }
        signal.yield()
    }

    func takeAll() -> [QueueEvent] {
        events.withLock { events in
            defer { events.removeAll(keepingCapacity: true) }
            return events
        }
    }

    /// Ends `wakes`: the loop leaves once it has taken what is left.
    func close() { signal.finish() }
}
#endif
