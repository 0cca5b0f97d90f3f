import Logging
import Synchronization

/// The worker's end of its control channel (descriptor 3): reads the bootstrap and stop
/// requests, writes ready, log records and the exit report.
final class WorkerControlChannel: Sendable {
    let fd: Int32
    private let writeLock = Lock()
    private let decoder = Mutex(FrameDecoder())
    private let reader = Mutex<PosixThread?>(nil)

    init(fd: Int32) {
        self.fd = fd
    }

    /// Reads the first message, which must be the bootstrap; with no timeout (a standby),
    /// waits until it comes or the channel closes, and adds to `descriptors` those passed with
    /// it (a standby's listening sockets).
    func readBootstrap(timeoutMilliseconds: Int32?, descriptors: inout [Int32]) throws -> WorkerBootstrap {
        let deadline = timeoutMilliseconds.map { Posix.monotonicNanoseconds() + UInt64($0) * 1_000_000 }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let frame = try decoder.withLock({ decoder throws(FrameError) in try decoder.next() }) {
                guard case .bootstrap(let bootstrap) = try ControlCodec.decodeWatcherMessage(frame) else {
                    throw FrameError(code: .unknownKind(frame.kind))
                }
                return bootstrap
            }
            if let deadline, let timeoutMilliseconds {
                let now = Posix.monotonicNanoseconds()
                guard now < deadline else {
                    throw BootstrapMissing(reason: "none came within \(timeoutMilliseconds) ms", closed: false)
                }
                let remaining = Int32((deadline - now) / 1_000_000) + 1
                guard try Posix.pollReadable(fd, timeoutMilliseconds: remaining) else { continue }
            }
            // recvmsg either way: only a standby is ever passed descriptors, and it finds none otherwise.
            let n = try buffer.withUnsafeMutableBytes { try Posix.receive(fd, into: $0, descriptors: &descriptors) }
            if n == 0 {
                throw BootstrapMissing(reason: "the control channel closed before it came", closed: true)
            }
            decoder.withLock { $0.append(buffer[0..<n]) }
        }
    }

    /// Starts the thread that turns stop requests, direct SIGTERM/SIGINT and the watcher's
    /// death into ``Worker/requestStop(_:)``.
    func startReading(worker: Worker) throws {
        let (signalRead, signalWrite) = try Posix.pipe()
        for signal in [PosixSignal.terminate, PosixSignal.interrupt] {
            try Posix.routeSignal(signal, toDescriptor: signalWrite)
        }
        let thread = try PosixThread(name: "pool-control") { [self] in
            self.readLoop(worker: worker, signalFD: signalRead)
        }
        reader.withLock { $0 = thread }
    }

    private func readLoop(worker: Worker, signalFD: Int32) {
        // A stop sent right after the bootstrap may have arrived in the same read as the
        // bootstrap: it is already in the decoder, and no new data would wake the loop for it.
        handleBufferedFrames(worker)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let readable: [Int32]
            do {
                readable = try Posix.pollReadable([fd, signalFD], timeoutMilliseconds: -1)
            } catch {
                orphaned(worker)
            }
            if readable.contains(signalFD) {
                var bytes = [UInt8](repeating: 0, count: 8)
                if let n = bytes.withUnsafeMutableBytes({ try? Posix.read(signalFD, into: $0) }) ?? nil, n > 0 {
                    worker.requestStop(.signal(Int32(bytes[0])))
                }
            }
            guard readable.contains(fd) else { continue }
            let received: Int?
            do {
                received = try buffer.withUnsafeMutableBytes { try Posix.receive(fd, into: $0, nonBlocking: true) }
            } catch {
                orphaned(worker)
            }
            guard let n = received else { continue }
            if n == 0 { orphaned(worker) }
            decoder.withLock { $0.append(buffer[0..<n]) }
            handleBufferedFrames(worker)
        }
    }

    /// Acts on every whole frame the decoder holds.
    private func handleBufferedFrames(_ worker: Worker) {
        do {
            while let frame = try decoder.withLock({ decoder throws(FrameError) in try decoder.next() }) {
                if case .stop(let request) = try ControlCodec.decodeWatcherMessage(frame) {
                    worker.requestStop(.requested(request.reason))
                }
            }
        } catch {
            worker.logger.error("malformed message from the watcher: \(error)")
            orphaned(worker)
        }
    }

    /// The watcher is gone: stop, give the entry point a moment, then exit regardless.
    private func orphaned(_ worker: Worker) -> Never {
        worker.requestStop(.watcherLost)
        Posix.sleep(milliseconds: WorkerProcess.orphanGraceMilliseconds)
        Posix.exitImmediately(WorkerProcess.ExitCode.watcherLost)
    }

    func send(_ message: WorkerMessage) {
        let frame = ControlCodec.encode(message)
        writeLock.withLock {
            // A failed write means the watcher is gone; the reader thread handles that.
            try? Posix.sendAll(fd, frame.encoded)
        }
    }

    func report(_ report: WorkerExitReport) {
        send(.exiting(report))
    }
}

/// A swift-log handler that forwards every record to the watcher over the control channel.
struct ControlChannelLogHandler: LogHandler {
    let channel: WorkerControlChannel
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let record = LogRecord(
            level: event.level.rawValue, message: "\(event.message)",
            metadata: merged.mapValues { "\($0)" }, timestamp: Posix.wallClockSeconds())
        channel.send(.log(record))
    }
}

/// The watcher's bootstrap message did not arrive: not a failed system call, so no errno.
struct BootstrapMissing: Error, CustomStringConvertible {
    var reason: String
    /// The watcher closed the channel (or died) rather than being late.
    var closed: Bool
    var description: String { reason }
}
