import NIOCore
import Synchronization

/// Writes frames to a channel from any thread, flushing once per burst: frames written on the
/// event loop in one turn go out in one `writev`, instead of one system call per job.
final class CoalescingWriter: Sendable {
    private let channel: any Channel
    // Touched only in tasks on the channel's event loop; the mutex keeps that checkable and cheap.
    private let isFlushScheduled = Mutex(false)

    init(channel: any Channel) {
        self.channel = channel
    }

    func write(_ frame: JobFrame) {
        var buffer = channel.allocator.buffer(capacity: 64)
        frame.write(to: &buffer)
        channel.eventLoop.execute { [self, buffer] in
            channel.write(buffer, promise: nil)
            let alreadyScheduled = isFlushScheduled.withLock { scheduled -> Bool in
                defer { scheduled = true }
                return scheduled
            }
            guard !alreadyScheduled else { return }
            // Runs after every write already queued on the loop: one flush for all of them.
            channel.eventLoop.execute { [self] in
                isFlushScheduled.withLock { $0 = false }
                channel.flush()
            }
        }
    }
}
