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

    static let magic: (UInt8, UInt8) = (0x50, 0x4A)  // "PJ"
    /// Version 2 added the request's sender token and the `started` frame.
    static let version: UInt8 = 2
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
        let start = buffer.writerIndex
        buffer.writeInteger(Self.magic.0)
        buffer.writeInteger(Self.magic.1)
        buffer.writeInteger(Self.version)
        buffer.writeInteger(kind.rawValue)
        buffer.writeInteger(UInt32(0), endianness: .little)
        let bodyStart = buffer.writerIndex
        switch self {
        case .request(let request):
            buffer.writeInteger(request.jobID, endianness: .little)
            buffer.writeInteger(request.deadline, endianness: .little)
            buffer.writeInteger(request.priority, endianness: .little)
            buffer.writeInteger(request.weight, endianness: .little)
            buffer.writeInteger(request.senderWorker, endianness: .little)
            buffer.writeInteger(request.senderGroup, endianness: .little)
            buffer.writeInteger(request.senderToken, endianness: .little)
            buffer.writeBytes(request.payload)
        case .cancel(let jobID):
            buffer.writeInteger(jobID, endianness: .little)
        case .result(let result):
            buffer.writeInteger(result.jobID, endianness: .little)
            buffer.writeInteger(result.worker, endianness: .little)
            buffer.writeInteger(result.queueWaitNanoseconds, endianness: .little)
            buffer.writeInteger(result.runNanoseconds, endianness: .little)
            buffer.writeBytes(result.payload)
        case .error(let error):
            buffer.writeInteger(error.jobID, endianness: .little)
            buffer.writeInteger(error.worker, endianness: .little)
            buffer.writeInteger(error.code.rawValue)
            buffer.writeInteger(error.queueWaitNanoseconds, endianness: .little)
            buffer.writeInteger(error.runNanoseconds, endianness: .little)
            buffer.writeString(error.message)
        case .closing:
            break
        case .started(let jobIDs):
            for jobID in jobIDs { buffer.writeInteger(jobID, endianness: .little) }
        }
        buffer.setInteger(UInt32(buffer.writerIndex - bodyStart), at: start + 4, endianness: .little)
    }

    var kind: Kind {
        switch self {
        case .request: return .request
        case .cancel: return .cancel
        case .result: return .result
        case .error: return .error
        case .closing: return .closing
        case .started: return .started
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
        }
    }
}
