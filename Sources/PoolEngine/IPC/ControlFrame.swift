/// One frame on a control channel: a fixed 8-byte header, then the payload.
///
/// ```
/// offset 0  2 bytes  magic "PT" (0x50 0x54)
/// offset 2  1 byte   protocol version (2)
/// offset 3  1 byte   message kind
/// offset 4  4 bytes  payload length, unsigned little-endian
/// offset 8  length   payload
/// ```
/// The layout is documented once, in `docs/architecture.md`.
package struct ControlFrame: Hashable, Sendable {
    static let magic: (UInt8, UInt8) = (0x50, 0x54)
    /// 2: payloads in ``ByteWriter``'s encoding (1 had JSON), so a worker of an older build
    /// meets a clear version error, not a payload it misreads.
    static let version: UInt8 = 2
    static let headerSize = 8
    /// Control messages are small; the bootstrap of a pool with thousands of slots stays far below this.
    static let defaultMaximumPayload = 16 * 1024 * 1024

    package var kind: UInt8
    package var payload: [UInt8]

    package init(kind: UInt8, payload: [UInt8]) {
        self.kind = kind
        self.payload = payload
    }

    /// The frame's bytes, header included.
    package var encoded: [UInt8] {
        var bytes: [UInt8] = [Self.magic.0, Self.magic.1, Self.version, kind]
        bytes.reserveCapacity(Self.headerSize + payload.count)
        let length = UInt32(payload.count)
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
        bytes += payload
        return bytes
    }
}

/// Why bytes on a control channel cannot be decoded. The channel is unusable afterwards.
package struct FrameError: Error, Hashable, Sendable, CustomStringConvertible {
    enum Code: Hashable, Sendable {
        case badMagic(UInt8, UInt8)
        case unsupportedVersion(UInt8)
        case oversized(length: Int, limit: Int)
        case undecodablePayload(kind: UInt8, detail: String)
        case unknownKind(UInt8)
    }

    var code: Code

    package var description: String {
        switch code {
        case .badMagic(let a, let b):
            return "control frame: bad magic 0x\(String(a, radix: 16)) 0x\(String(b, radix: 16)) (expected 0x50 0x54)"
        case .unsupportedVersion(let version):
            return "control frame: field 'version' is \(version), this build speaks \(ControlFrame.version)"
        case .oversized(let length, let limit):
            return "control frame: field 'length' is \(length) bytes, above the limit of \(limit)"
        case .undecodablePayload(let kind, let detail):
            return "control frame: payload of kind \(kind) cannot be decoded: \(detail)"
        case .unknownKind(let kind):
            return "control frame: field 'kind' is \(kind), which this build does not know"
        }
    }
}

/// Splits a byte stream into frames. Pure: feed it bytes in any pieces, take frames out.
package struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    let maximumPayload: Int

    package init(maximumPayload: Int = ControlFrame.defaultMaximumPayload) {
        self.maximumPayload = maximumPayload
    }

    /// Bytes received but not yet part of a whole frame.
    var bufferedCount: Int { buffer.count - start }

    package mutating func append<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole frame, nil when more bytes are needed; throws on a malformed header.
    package mutating func next() throws(FrameError) -> ControlFrame? {
        guard bufferedCount >= 1 else { return nil }
        if buffer[start] != ControlFrame.magic.0 {
            throw FrameError(code: .badMagic(buffer[start], bufferedCount > 1 ? buffer[start + 1] : 0))
        }
        guard bufferedCount >= 2 else { return nil }
        if buffer[start + 1] != ControlFrame.magic.1 {
            throw FrameError(code: .badMagic(buffer[start], buffer[start + 1]))
        }
        guard bufferedCount >= 3 else { return nil }
        if buffer[start + 2] != ControlFrame.version {
            throw FrameError(code: .unsupportedVersion(buffer[start + 2]))
        }
        guard bufferedCount >= ControlFrame.headerSize else { return nil }
        var length = 0
        for offset in 0..<4 { length |= Int(buffer[start + 4 + offset]) << (8 * offset) }
        if length > maximumPayload {
            throw FrameError(code: .oversized(length: length, limit: maximumPayload))
        }
        guard bufferedCount >= ControlFrame.headerSize + length else { return nil }
        let kind = buffer[start + 3]
        let payloadStart = start + ControlFrame.headerSize
        let payload = Array(buffer[payloadStart..<payloadStart + length])
        start = payloadStart + length
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        return ControlFrame(kind: kind, payload: payload)
    }
}
