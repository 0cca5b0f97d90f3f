import NIOCore
import Synchronization

/// Writes frames to a channel from any thread with one event-loop hop and one flush per burst:
/// frames queued while a hop is pending ride along with it, so a busy connection costs one
/// wake-up and one `write` system call for many jobs instead of one each.
final class CoalescingWriter: Sendable {
    private struct Batch {
        var bytes: ByteBuffer
        /// Jobs whose answers are in the batch, for ``written``.
        var answered: [UInt64] = []
        /// Told whether the batch reached the kernel (see ``write(_:then:)``).
        var continuations: [@Sendable (Bool) -> Void] = []
    }

    private let channel: any Channel
    private let queued: Mutex<Batch?> = Mutex(nil)
    /// Told the ids of the jobs whose answers were written (in the kernel), or could not be
    /// because the connection is gone.
    private let written: (@Sendable ([UInt64]) -> Void)?

    init(channel: any Channel, written: (@Sendable ([UInt64]) -> Void)? = nil) {
        self.channel = channel
        self.written = written
    }

    func write(_ frame: JobFrame) { write(frame, then: nil) }

    /// Writes `frame`, then calls `then` with true once its bytes are in the kernel, or false
    /// when the connection is gone: for a `started` frame, whose job may run only after it.
    func write(_ frame: JobFrame, then: (@Sendable (Bool) -> Void)?) {
        var answered: UInt64?
        switch frame {
        case .result(let result): answered = result.jobID
        case .error(let error): answered = error.jobID
        default: break
        }
        let mustSchedule = queued.withLock { queued -> Bool in
            let first = queued == nil
            if first { queued = Batch(bytes: channel.allocator.buffer(capacity: 256)) }
            frame.write(to: &queued!.bytes)
            if let answered, written != nil { queued!.answered.append(answered) }
            if let then { queued!.continuations.append(then) }
            return first
        }
        guard mustSchedule else { return }
        channel.eventLoop.execute { [self] in
            // Take everything queued so far; later frames schedule the next hop.
            guard let batch = queued.withLock({ queued -> Batch? in
                defer { queued = nil }
                return queued
            }) else { return }
            guard !batch.answered.isEmpty || !batch.continuations.isEmpty else {
                channel.writeAndFlush(batch.bytes, promise: nil)
                return
            }
            // Completed when the bytes are in the socket: synchronously, inside this call, when
            // the socket has room, as it almost always has.
            let promise = channel.eventLoop.makePromise(of: Void.self)
            let written = self.written
            promise.futureResult.whenComplete { result in
                if !batch.answered.isEmpty { written?(batch.answered) }
                let delivered = if case .success = result { true } else { false }
                for continuation in batch.continuations { continuation(delivered) }
            }
            channel.writeAndFlush(batch.bytes, promise: promise)
        }
    }
}
