/// The flight recorder's byte encoding: unsigned LEB128 varints (small numbers, which most
/// counters and time offsets are, take one or two bytes), zigzag for signed ones, and
/// length-prefixed UTF-8 strings.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func unsigned(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func unsigned(_ value: Int) { unsigned(UInt64(clamping: value)) }

    mutating func signed(_ value: Int64) { unsigned(Self.zigzag(value)) }

    /// A signed value or nil: nil as 0, a value as its zigzag form + 1.
    mutating func optionalSigned(_ value: Int64?) { unsigned(value.map { Self.zigzag($0) &+ 1 } ?? 0) }

    /// Small magnitudes of either sign to small unsigned numbers: 0, -1, 1, -2 … → 0, 1, 2, 3 ….
    static func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }

    /// A string cut to at most `limit` bytes (on a character boundary).
    mutating func string(_ value: String, limit: Int = 4096) {
        var utf8 = Array(value.utf8)
        if utf8.count > limit {
            utf8 = Array(utf8.prefix(limit))
            // Drop a partial character at the cut: continuation bytes are 10xxxxxx.
            while let last = utf8.last, last & 0xC0 == 0x80 { utf8.removeLast() }
            if let last = utf8.last, last >= 0xC0 { utf8.removeLast() }
        }
        unsigned(utf8.count)
        bytes += utf8
    }

    /// nil as 0, a string as its length + 1 and its bytes.
    mutating func optionalString(_ value: String?, limit: Int = 4096) {
        guard let value else {
            unsigned(0)
            return
        }
        let utf8 = Array(value.utf8.prefix(limit))
        unsigned(utf8.count + 1)
        bytes += utf8
    }

    mutating func append(_ other: [UInt8]) { bytes += other }
}

/// Reads what ``ByteWriter`` wrote; every read past the end or malformed throws, naming the field.
struct ByteReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int

    struct Truncated: Error, CustomStringConvertible {
        var field: String
        var description: String { "the recording ends in the middle of \(field)" }
    }

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    var isAtEnd: Bool { index >= bytes.endIndex }

    mutating func byte(_ field: String) throws(Truncated) -> UInt8 {
        guard index < bytes.endIndex else { throw Truncated(field: field) }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func unsigned(_ field: String) throws(Truncated) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte(field)
            guard shift < 64 else { throw Truncated(field: field) }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func int(_ field: String) throws(Truncated) -> Int { Int(clamping: try unsigned(field)) }

    mutating func signed(_ field: String) throws(Truncated) -> Int64 { Self.unzigzag(try unsigned(field)) }

    /// What ``ByteWriter/optionalSigned(_:)`` wrote.
    mutating func optionalSigned(_ field: String) throws(Truncated) -> Int64? {
        let raw = try unsigned(field)
        return raw == 0 ? nil : Self.unzigzag(raw - 1)
    }

    static func unzigzag(_ raw: UInt64) -> Int64 { Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1) }

    mutating func string(_ field: String) throws(Truncated) -> String {
        let count = try int(field)
        guard count <= bytes.endIndex - index else { throw Truncated(field: field) }
        defer { index += count }
        return String(decoding: bytes[index..<index + count], as: UTF8.self)
    }

    mutating func optionalString(_ field: String) throws(Truncated) -> String? {
        let count = try int(field)
        guard count > 0 else { return nil }
        guard count - 1 <= bytes.endIndex - index else { throw Truncated(field: field) }
        defer { index += count - 1 }
        return String(decoding: bytes[index..<index + count - 1], as: UTF8.self)
    }
}
