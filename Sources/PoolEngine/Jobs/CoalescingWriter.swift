import NIOCore
import Synchronization

/// Writes frames to a channel from any thread with one event-loop hop and one flush per burst:
/// frames queued while a hop is pending ride along with it, so a busy connection costs one
/// wake-up and one `write` system call for many jobs instead of one each.
final class CoalescingWriter: Sendable {
    private let channel: any Channel
    private let queued: Mutex<(bytes: ByteBuffer, answered: [UInt64])?> = Mutex(nil)
    /// Told the ids of the jobs whose answers were written (in the kernel), or could not be
    /// because the connection is gone.
    private let written: (@Sendable ([UInt64]) -> Void)?

    init(channel: any Channel, written: (@Sendable ([UInt64]) -> Void)? = nil) {
        self.channel = channel
        self.written = written
    }

    func write(_ frame: JobFrame) {
        var answered: UInt64?
        switch frame {
        case .result(let result): answered = result.jobID
        case .error(let error): answered = error.jobID
        default: break
        }
        let mustSchedule = queued.withLock { queued -> Bool in
            let first = queued == nil
            if first { queued = (channel.allocator.buffer(capacity: 256), []) }
            frame.write(to: &queued!.bytes)
            if let answered, written != nil { queued!.answered.append(answered) }
            return first
        }
        guard mustSchedule else { return }
        channel.eventLoop.execute { [self] in
            // Take everything queued so far; later frames schedule the next hop.
            guard let batch = queued.withLock({ queued -> (bytes: ByteBuffer, answered: [UInt64])? in
                defer { queued = nil }
                return queued
            }) else { return }
            guard let written, !batch.answered.isEmpty else {
                channel.writeAndFlush(batch.bytes, promise: nil)
                return
            }
            let promise = channel.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { _ in written(batch.answered) }
            channel.writeAndFlush(batch.bytes, promise: promise)
        }
    }
}
