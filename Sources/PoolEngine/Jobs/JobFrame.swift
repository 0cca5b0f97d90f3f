import NIOCore

/// One message of the job protocol between a sending worker and a job worker
/// (`docs/ipc-protocol.md`). Results and errors travel back on the connection the request came on.
///
/// `package`, with its reader and writer: the fuzz harness (Tests/Fuzz) decodes frames as a
/// connection does.
package enum JobFrame: Hashable, Sendable {
    case request(JobRequestFrame)
    case cancel(jobID: UInt64)
    case result(JobResultFrame)
    case error(JobErrorFrame)
    /// Worker to sender: this worker is stopping and has answered every job it took on this
    /// connection; send no more here and close it. Requests already on their way are answered
    /// `stopping`, so their sender tries another worker.
    case closing
    /// Worker to sender: these jobs have started. Written, and in the kernel, before any of
    /// their handlers runs, so a sender whose worker dies knows which of its jobs never
    /// started (those it may send elsewhere) and which did (those that end `workerLost`).
    case started([UInt64])
    /// Sender to worker, first on a connection if at all, with a shared file of `bytes` bytes
    /// passed with it (SCM_RIGHTS): the connection's lane (``JobLane``), where a lone sender's
    /// job and its answer may travel through shared memory instead of the socket.
    case lane(bytes: UInt32)

    static let magic: (UInt8, UInt8) = (0x50, 0x4A)  // "PJ"
    /// Version 2 added the request's sender token and the `started` frame; 3 the `lane` frame.
    static let version: UInt8 = 3
    static let headerSize = 8
    /// The default limit on a frame's body, enforced by both sides.
    static let defaultMaximumBody = 16 * 1024 * 1024

    enum Kind: UInt8 {
        case request = 1
        case cancel = 2
        case result = 3
        case error = 4
        case closing = 5
        case started = 6
        case lane = 7
    }
}

package struct JobRequestFrame: Hashable, Sendable {
    var jobID: UInt64
    /// CLOCK_MONOTONIC nanoseconds (one clock for every process on the host); 0 for none.
    var deadline: UInt64
    var priority: Int32
    var weight: UInt32
    var senderWorker: UInt32
    var senderGroup: UInt32
    /// The sending job client's random token: the worker writes it with the job id into its
    /// running-jobs table, so the sender can tell its jobs apart from another sender's.
    var senderToken: UInt64 = 0
    var payload: [UInt8]

    static let fixedSize = 40
}

package struct JobResultFrame: Hashable, Sendable {
    var jobID: UInt64
    var worker: UInt32
    var queueWaitNanoseconds: UInt64
    var runNanoseconds: UInt64
    var payload: [UInt8]

    static let fixedSize = 28
}

package struct JobErrorFrame: Hashable, Sendable {
    var jobID: UInt64
    var worker: UInt32
    var code: JobErrorCode
    var queueWaitNanoseconds: UInt64
    var runNanoseconds: UInt64
    var message: String

    static let fixedSize = 29
}

/// Why a job did not produce a result, as it travels on the wire.
public enum JobErrorCode: UInt8, Hashable, Sendable, Codable, CaseIterable {
    /// The handler threw; the message is its error.
    case handlerFailed = 1
    /// The worker's queue is full; try another worker.
    case rejected = 2
    /// The deadline passed before the job finished.
    case timedOut = 3
    /// The sender cancelled the job.
    case cancelled = 4
    /// The worker is stopping and takes no new jobs; try another worker.
    case stopping = 5
    /// The request could not be understood.
    case badRequest = 6
    /// The payload is larger than the frame limit.
    case tooLarge = 7
}

/// A frame that cannot be decoded; the connection it came on is closed.
package struct JobFrameError: Error, Hashable, Sendable, CustomStringConvertible {
    var message: String
    package var description: String { "job frame: \(message)" }
}

extension JobFrame {
    /// Appends the frame's bytes to `buffer`.
    package func write(to buffer: inout ByteBuffer) {
        // Frames of fixed fields take one capacity check and plain stores: each `writeInteger`
        // checks the buffer's capacity and uniqueness on its own, and a request's eleven were
        // 9 % of a busy sender's CPU (decision 0024).
        switch self {
        case .request(let request):
            Self.write(.request, fixedSize: JobRequestFrame.fixedSize, payload: request.payload, to: &buffer) { out in
                out.store(request.jobID)
                out.store(request.deadline)
                out.store(request.priority)
                out.store(request.weight)
                out.store(request.senderWorker)
                out.store(request.senderGroup)
                out.store(request.senderToken)
            }
        case .result(let result):
            Self.write(.result, fixedSize: JobResultFrame.fixedSize, payload: result.payload, to: &buffer) { out in
                out.store(result.jobID)
                out.store(result.worker)
                out.store(result.queueWaitNanoseconds)
                out.store(result.runNanoseconds)
            }
        case .cancel(let jobID):
            Self.write(.cancel, fixedSize: 8, payload: [], to: &buffer) { $0.store(jobID) }
        case .closing:
            Self.write(.closing, fixedSize: 0, payload: [], to: &buffer) { _ in }
        case .error(let error):
            Self.write(.error, fixedSize: JobErrorFrame.fixedSize, payload: Array(error.message.utf8), to: &buffer) { out in
                out.store(error.jobID)
                out.store(error.worker)
                out.store(error.code.rawValue)
                out.store(error.queueWaitNanoseconds)
                out.store(error.runNanoseconds)
            }
        case .started(let jobIDs):
            Self.write(.started, fixedSize: 8 * jobIDs.count, payload: [], to: &buffer) { out in
                for jobID in jobIDs { out.store(jobID) }
            }
        case .lane(let bytes):
            Self.write(.lane, fixedSize: 4, payload: [], to: &buffer) { $0.store(bytes) }
        }
    }

    /// Appends a frame of `kind`: the header, the `fixedSize` bytes `body` stores, the payload.
    private static func write(
        _ kind: Kind, fixedSize: Int, payload: [UInt8], to buffer: inout ByteBuffer, _ body: (inout FixedFieldWriter) -> Void
    ) {
        let size = headerSize + fixedSize + payload.count
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { bytes in
            var out = FixedFieldWriter(bytes: bytes)
            out.store(magic.0)
            out.store(magic.1)
            out.store(version)
            out.store(kind.rawValue)
            out.store(UInt32(fixedSize + payload.count))
            body(&out)
            assert(out.offset == headerSize + fixedSize, "a frame's fixed fields are \(fixedSize) bytes")
            payload.withUnsafeBytes { source in
                guard let from = source.baseAddress, let to = bytes.baseAddress else { return }
                (to + out.offset).copyMemory(from: from, byteCount: source.count)
            }
            return size
        }
    }

    /// The job a result or an error answers; nil for any other frame.
    var answeredJobID: UInt64? {
        switch self {
        case .result(let result): return result.jobID
        case .error(let error): return error.jobID
        default: return nil
        }
    }

    var kind: Kind {
        switch self {
        case .request: return .request
        case .cancel: return .cancel
        case .result: return .result
        case .error: return .error
        case .closing: return .closing
        case .started: return .started
        case .lane: return .lane
        }
    }

    /// Reads one whole frame from `buffer`, nil when more bytes are needed; throws on a malformed one.
    package static func read(from buffer: inout ByteBuffer, maximumBody: Int = defaultMaximumBody) throws(JobFrameError) -> JobFrame? {
        guard buffer.readableBytes >= 1 else { return nil }
        let view = buffer.readableBytesView
        let start = view.startIndex
        if view[start] != magic.0 || (view.count > 1 && view[start + 1] != magic.1) {
            throw JobFrameError(message: "bad magic (not a pooltop job connection)")
        }
        guard view.count >= 3 else { return nil }
        if view[start + 2] != version {
            throw JobFrameError(message: "field 'version' is \(view[start + 2]), this build speaks \(version)")
        }
        guard view.count >= headerSize else { return nil }
        let kindByte = view[start + 3]
        guard let kind = Kind(rawValue: kindByte) else { throw JobFrameError(message: "field 'kind' is \(kindByte), unknown") }
        let length = Int(buffer.getInteger(at: buffer.readerIndex + 4, endianness: .little, as: UInt32.self)!)
        guard length <= maximumBody else {
            throw JobFrameError(message: "field 'length' is \(length) bytes, above the limit of \(maximumBody)")
        }
        guard buffer.readableBytes >= headerSize + length else { return nil }
        buffer.moveReaderIndex(forwardBy: headerSize)
        var body = buffer.readSlice(length: length)!
        func need(_ size: Int, _ what: String) throws(JobFrameError) {
            if body.readableBytes < size { throw JobFrameError(message: "a \(what) body of \(length) bytes is shorter than its \(size)-byte header") }
        }
        switch kind {
        case .request:
            try need(JobRequestFrame.fixedSize, "request")
            return .request(
                JobRequestFrame(
                    jobID: body.readInteger(endianness: .little)!, deadline: body.readInteger(endianness: .little)!,
                    priority: body.readInteger(endianness: .little)!, weight: body.readInteger(endianness: .little)!,
                    senderWorker: body.readInteger(endianness: .little)!, senderGroup: body.readInteger(endianness: .little)!,
                    senderToken: body.readInteger(endianness: .little)!, payload: body.readBytes(length: body.readableBytes)!))
        case .cancel:
            try need(8, "cancel")
            return .cancel(jobID: body.readInteger(endianness: .little)!)
        case .result:
            try need(JobResultFrame.fixedSize, "result")
            return .result(
                JobResultFrame(
                    jobID: body.readInteger(endianness: .little)!, worker: body.readInteger(endianness: .little)!,
                    queueWaitNanoseconds: body.readInteger(endianness: .little)!, runNanoseconds: body.readInteger(endianness: .little)!,
                    payload: body.readBytes(length: body.readableBytes)!))
        case .error:
            try need(JobErrorFrame.fixedSize, "error")
            let jobID: UInt64 = body.readInteger(endianness: .little)!
            let worker: UInt32 = body.readInteger(endianness: .little)!
            let codeByte: UInt8 = body.readInteger()!
            guard let code = JobErrorCode(rawValue: codeByte) else {
                throw JobFrameError(message: "field 'code' is \(codeByte), unknown")
            }
            return .error(
                JobErrorFrame(
                    jobID: jobID, worker: worker, code: code, queueWaitNanoseconds: body.readInteger(endianness: .little)!,
                    runNanoseconds: body.readInteger(endianness: .little)!, message: body.readString(length: body.readableBytes) ?? ""))
        case .closing:
            return .closing
        case .started:
            guard length >= 8, length % 8 == 0 else {
                throw JobFrameError(message: "a started body of \(length) bytes is not one or more 8-byte job ids")
            }
            var jobIDs: [UInt64] = []
            jobIDs.reserveCapacity(length / 8)
            while let jobID: UInt64 = body.readInteger(endianness: .little) { jobIDs.append(jobID) }
            return .started(jobIDs)
        case .lane:
            try need(4, "lane")
            return .lane(bytes: body.readInteger(endianness: .little)!)
        }
    }
}

/// Stores little-endian integers one after another into memory the caller made room for.
private struct FixedFieldWriter {
    let bytes: UnsafeMutableRawBufferPointer
    var offset = 0

    mutating func store<Value: FixedWidthInteger>(_ value: Value) {
        bytes.storeBytes(of: value.littleEndian, toByteOffset: offset, as: Value.self)
        offset += MemoryLayout<Value>.size
    }
}
