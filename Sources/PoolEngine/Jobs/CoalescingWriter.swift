import NIOCore
import Synchronization

/// Writes frames to a channel from any thread with one event-loop hop and one flush per burst:
/// frames queued while a hop is pending ride along with it, so a busy connection costs one
/// wake-up and one `write` system call for many jobs instead of one each.
final class CoalescingWriter: Sendable {
    private let channel: any Channel
    private let queued: Mutex<ByteBuffer?> = Mutex(nil)

    init(channel: any Channel) {
        self.channel = channel
    }

    func write(_ frame: JobFrame) {
        let mustSchedule = queued.withLock { queued -> Bool in
            if queued == nil {
                var buffer = channel.allocator.buffer(capacity: 256)
                frame.write(to: &buffer)
                queued = buffer
                return true
            }
            frame.write(to: &queued!)
            return false
        }
        guard mustSchedule else { return }
        channel.eventLoop.execute { [self] in
            // Take everything queued so far; later frames schedule the next hop.
            guard let buffer = queued.withLock({ queued -> ByteBuffer? in
                defer { queued = nil }
                return queued
            }) else { return }
            channel.writeAndFlush(buffer, promise: nil)
        }
    }
}
