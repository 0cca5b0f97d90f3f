import NIOCore
import Synchronization

/// One sender's connection to a job worker, as the worker writes to it: answers and `started`
/// frames from any thread, few `send`s for many frames.
///
/// Frames queued while the server's thread is awake (reading a batch of requests, or about to
/// look again) wait for it to send them at the end of its batch, in one `send`: inline answers
/// and answers finished meanwhile on other threads ride together, as NIO's flush did. While it
/// sleeps in `epoll_wait`, the thread that queues a frame sends it itself, at once, and frames
/// others queue meanwhile go out in the same loop. Bytes a full socket does not take wait for
/// the server's thread to report room. Each answer and `started` frame carries a mark, fired
/// once its bytes are in the kernel, or when the connection is gone.
final class JobServerConnection: Sendable {
    /// What to do once a frame is in the kernel (true) or can never be (false).
    enum Mark: Sendable {
        /// The scheduler forgets the job in the running-jobs table.
        case answered(UInt64)
        /// The jobs' handlers may start (``JobScheduler/StartGate``).
        case started([@Sendable (Bool) -> Void])
    }

    private struct Output: ~Copyable {
        var pending = ByteBuffer()
        /// Marks with the number of pending bytes after which their frame ends.
        var marks: [(end: Int, mark: Mark)] = []
        /// `started` frames to send with the server thread's batch.
        var starts: [(jobID: UInt64, launch: @Sendable (Bool) -> Void)] = []
        /// Someone is sending; others only queue.
        var isWriting = false
        /// The socket is full: the server's thread sends the rest when it has room.
        var isBlocked = false
        /// The server's thread will send what is queued at the end of its batch.
        var isDeferred = false
        /// Shut the sending side once everything queued is sent (the goodbye).
        var shutdownWhenFlushed = false
        var isShut = false
        var isClosed = false
        /// The descriptor was closed (by whoever was last to use it).
        var isReleased = false
    }

    private enum Next { case nothing, fail, hand }

    /// The scheduler's number for the connection; also its epoll token.
    let id: UInt64
    let fd: Posix.FD
    private let output = Mutex(Output())
    private let server: JobServer

    init(id: UInt64, fd: Posix.FD, server: JobServer) {
        self.id = id
        self.fd = fd
        self.server = server
    }

    /// Queues `frame`; it leaves with the frames around it, or now.
    func write(_ frame: JobFrame) {
        enqueue(frame.answeredJobID.map(Mark.answered)) { frame.write(to: &$0) }
    }

    /// The scheduler's gate: a `started` frame naming the job, then `launch` once it is in the kernel.
    func announce(_ jobID: UInt64, _ launch: @escaping @Sendable (Bool) -> Void) {
        guard server.isOnLoopThread else {
            return enqueue(.started([launch])) { JobFrame.started([jobID]).write(to: &$0) }
        }
        // On the server's thread: one frame for every job its batch starts.
        let next = output.withLock { output -> Next in
            guard !output.isClosed && !output.isShut else { return .fail }
            output.starts.append((jobID, launch))
            if output.isDeferred { return .nothing }
            output.isDeferred = true
            return .hand
        }
        switch next {
        case .fail: launch(false)
        case .hand: _ = server.takeDeferred(self, fromLoop: true)
        case .nothing: break
        }
    }

    private func enqueue(_ mark: Mark?, _ encode: (inout ByteBuffer) -> Void) {
        let next = output.withLock { output -> Next in
            if output.isClosed || output.isShut { return .fail }
            encode(&output.pending)
            if let mark { output.marks.append((output.pending.readableBytes, mark)) }
            if output.isWriting || output.isBlocked || output.isDeferred { return .nothing }
            output.isDeferred = true
            return .hand
        }
        switch next {
        case .nothing: break
        case .fail: if let mark { fire([mark], written: false) }
        case .hand:
            // The server's thread takes it when it is awake; asleep, it would need waking, and
            // writing from here is quicker.
            if !server.takeDeferred(self, fromLoop: server.isOnLoopThread) { writeNowInstead() }
        }
    }

    /// The server's thread did not take the deferred flush (it sleeps): write from here.
    private func writeNowInstead() {
        let mustWrite = output.withLock { output -> Bool in
            output.isDeferred = false
            guard !output.isWriting && !output.isBlocked && !output.isClosed && output.pending.readableBytes > 0 else { return false }
            output.isWriting = true
            return true
        }
        if mustWrite { drain() }
    }

    /// The server's thread, at the end of a batch: sends what was queued for it.
    func flushDeferred() {
        // The batch's starts go ahead of answers queued in it: those are for jobs started before.
        let refused = output.withLock { output -> [@Sendable (Bool) -> Void] in
            defer { output.starts = [] }
            guard !output.starts.isEmpty else { return [] }
            let launches = output.starts.map(\.launch)
            guard !output.isClosed && !output.isShut else { return launches }
            JobFrame.started(output.starts.map(\.jobID)).write(to: &output.pending)
            output.marks.append((output.pending.readableBytes, .started(launches)))
            return []
        }
        refused.forEach { $0(false) }
        writeNowInstead()
    }

    /// The socket has room again (the server's thread saw it writable).
    func socketHasRoom() {
        let mustWrite = output.withLock { output -> Bool in
            output.isBlocked = false
            guard !output.isWriting && !output.isClosed else { return false }
            output.isWriting = true
            return true
        }
        if mustWrite { drain() }
    }

    /// The goodbye: a `closing` frame after everything queued, then the sending side shut.
    func sayClosing() {
        let mustWrite = output.withLock { output -> Bool in
            guard !output.isClosed && !output.isShut && !output.shutdownWhenFlushed else { return false }
            JobFrame.closing.write(to: &output.pending)
            output.shutdownWhenFlushed = true
            guard !output.isWriting && !output.isBlocked else { return false }
            output.isWriting = true
            return true
        }
        if mustWrite { drain() }
    }

    /// Sends until nothing is queued or the socket is full; called by the one writer, which
    /// stays the writer until it returns, so the descriptor cannot be released under it.
    private func drain() {
        while true {
            let taken = output.withLock { output -> (bytes: ByteBuffer, marks: [(end: Int, mark: Mark)])? in
                if output.isClosed || output.pending.readableBytes == 0 {
                    output.isWriting = false
                    if !output.isClosed && output.shutdownWhenFlushed && !output.isShut {
                        output.isShut = true
                        Posix.shutdownWrite(fd)
                    }
                    return nil
                }
                defer {
                    output.pending = ByteBuffer()
                    output.marks = []
                }
                return (output.pending, output.marks)
            }
            guard var (bytes, marks) = taken else { return releaseIfDone() }
            var sent = 0
            var failed = false
            while bytes.readableBytes > 0 {
                do {
                    guard let n = try bytes.withUnsafeReadableBytes({ try Posix.sendNonBlocking(fd, $0) }) else { break }
                    bytes.moveReaderIndex(forwardBy: n)
                    sent += n
                } catch {
                    // The sender is gone: the server's thread sees the hang-up and closes.
                    failed = true
                    break
                }
            }
            let done = marks.prefix { $0.end <= sent }
            marks.removeFirst(done.count)
            fire(done.map(\.mark), written: true)
            if failed {
                let lost = output.withLock { output -> [Mark] in
                    output.isWriting = false
                    output.isClosed = true
                    defer { output.marks = [] }
                    return output.marks.map(\.mark)
                }
                fire(marks.map(\.mark) + lost, written: false)
                return releaseIfDone()
            }
            guard bytes.readableBytes > 0 else { continue }
            output.withLock { output in
                let left = bytes.readableBytes
                output.marks = marks.map { (end: $0.end - sent, mark: $0.mark) } + output.marks.map { (end: $0.end + left, mark: $0.mark) }
                bytes.writeBuffer(&output.pending)
                output.pending = bytes
                output.isBlocked = true
            }
            server.waitForRoom(self)
            // Room may have come while the server was told: then this writer goes on.
            let goesOn = output.withLock { output -> Bool in
                guard !output.isClosed && !output.isBlocked else {
                    output.isWriting = false
                    return false
                }
                return true
            }
            guard goesOn else { return releaseIfDone() }
        }
    }

    /// The sender closed, or the connection broke, or the server stops: what was queued is lost.
    func close() {
        let (lost, starts) = output.withLock { output -> ([Mark], [@Sendable (Bool) -> Void]) in
            output.isClosed = true
            defer {
                output.marks = []
                output.starts = []
                output.pending = ByteBuffer()
            }
            return (output.marks.map(\.mark), output.starts.map(\.launch))
        }
        fire(lost, written: false)
        starts.forEach { $0(false) }
        releaseIfDone()
    }

    /// Closes the descriptor once it is closed and no writer uses it: a writer on another
    /// thread must never send on a number the process has reused.
    private func releaseIfDone() {
        let release = output.withLock { output -> Bool in
            guard output.isClosed && !output.isWriting && !output.isReleased else { return false }
            output.isReleased = true
            return true
        }
        if release { Posix.close(fd) }
    }

    private func fire(_ marks: [Mark], written: Bool) {
        var answered: [UInt64] = []
        for mark in marks {
            switch mark {
            case .answered(let jobID): answered.append(jobID)
            case .started(let launches): launches.forEach { $0(written) }
            }
        }
        if !answered.isEmpty { server.scheduler.answersWritten(connection: id, jobIDs: answered) }
    }
}
