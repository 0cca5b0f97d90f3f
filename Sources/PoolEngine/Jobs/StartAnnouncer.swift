import NIOCore
import Synchronization

/// Tells one sender which of its jobs have started, before their handlers run.
///
/// A job's handler may start only once a `started` frame naming it is in the kernel: then a
/// sender whose worker dies knows exactly which jobs never started (it sends those to another
/// worker) and which did (those end `workerLost`, at most once). Jobs that start together
/// share one frame and one `write`: the frame is written on the connection's event loop in
/// the same loop turn that read their requests, and each handler starts from the write's
/// completion, so a quick job still starts and answers within that turn
/// (`docs/decisions/0008-job-start-acknowledgements.md`).
final class StartAnnouncer: Sendable {
    private let channel: any Channel
    private let pending = Mutex<[(jobID: UInt64, launch: @Sendable (Bool) -> Void)]>([])

    init(channel: any Channel) {
        self.channel = channel
    }

    /// The scheduler's gate for this connection.
    func announce(_ jobID: UInt64, _ launch: @escaping @Sendable (Bool) -> Void) {
        let first = pending.withLock { pending -> Bool in
            pending.append((jobID, launch))
            return pending.count == 1
        }
        // On the event loop this runs after the requests read in this turn, in the same turn:
        // one frame for all of them.
        if first { channel.eventLoop.execute { [self] in flush() } }
    }

    private func flush() {
        let batch = pending.withLock { pending in
            defer { pending = [] }
            return pending
        }
        guard !batch.isEmpty else { return }
        var buffer = channel.allocator.buffer(capacity: JobFrame.headerSize + 8 * batch.count)
        JobFrame.started(batch.map(\.jobID)).write(to: &buffer)
        let written = channel.eventLoop.makePromise(of: Void.self)
        // Completed when the bytes are in the socket: synchronously, inside this call, when
        // the socket has room, as it almost always has.
        written.futureResult.whenComplete { result in
            let announced = if case .success = result { true } else { false }
            for entry in batch { entry.launch(announced) }
        }
        channel.writeAndFlush(buffer, promise: written)
    }
}
