/// A compact byte encoding: unsigned LEB128 varints (small numbers, which most counters, ids
/// and time offsets are, take one or two bytes), zigzag for signed ones, and length-prefixed
/// UTF-8 strings. The flight recorder's frames and the control channel's payloads use it:
/// hand-written field by field, so reading one costs no generic or protocol-conformance lookup
/// at run time (a worker reads its bootstrap before anything else; decision 0016).
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

    /// A string, whole, or cut to at most `limit` bytes (the recorder bounds what a frame
    /// keeps; a control message is never cut).
    mutating func string(_ value: String, limit: Int = .max) {
        let utf8 = Self.cut(value, limit: limit)
        unsigned(utf8.count)
        bytes += utf8
    }

    /// nil as 0, a string as its length + 1 and its bytes (cut as ``string(_:limit:)`` cuts).
    mutating func optionalString(_ value: String?, limit: Int = .max) {
        guard let value else {
            unsigned(0)
            return
        }
        let utf8 = Self.cut(value, limit: limit)
        unsigned(utf8.count + 1)
        bytes += utf8
    }

    /// The UTF-8 of `value`, at most `limit` bytes, cut on a character boundary.
    private static func cut(_ value: String, limit: Int) -> [UInt8] {
        var utf8 = Array(value.utf8)
        guard utf8.count > limit else { return utf8 }
        utf8 = Array(utf8.prefix(limit))
        // Drop a partial character at the cut: continuation bytes are 10xxxxxx.
        while let last = utf8.last, last & 0xC0 == 0x80 { utf8.removeLast() }
        if let last = utf8.last, last >= 0xC0 { utf8.removeLast() }
        return utf8
    }

    mutating func append(_ other: [UInt8]) { bytes += other }

    mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    /// The IEEE 754 bits, as a varint.
    mutating func double(_ value: Double) { unsigned(value.bitPattern) }

    /// Seconds and attoseconds, each zigzag: exact for any `Duration`.
    mutating func duration(_ value: Duration) {
        signed(value.components.seconds)
        signed(value.components.attoseconds)
    }

    /// A count, then each element as `element` writes it.
    mutating func array<Element>(_ values: [Element], _ element: (inout ByteWriter, Element) -> Void) {
        unsigned(values.count)
        for value in values { element(&self, value) }
    }

    /// 0 for nil, else 1 and the value as `some` writes it.
    mutating func optional<Wrapped>(_ value: Wrapped?, _ some: (inout ByteWriter, Wrapped) -> Void) {
        guard let value else { return byte(0) }
        byte(1)
        some(&self, value)
    }

    /// Entries sorted by key, so equal dictionaries encode to equal bytes.
    mutating func dictionary<Value>(_ values: [String: Value], _ value: (inout ByteWriter, Value) -> Void) {
        unsigned(values.count)
        for key in values.keys.sorted() {
            string(key)
            value(&self, values[key]!)  // Safe: the key was just read from the dictionary.
        }
    }

    mutating func strings(_ values: [String: String]) { dictionary(values) { $0.string($1) } }
}

/// Reads what ``ByteWriter`` wrote; every read past the end or malformed throws, naming the field.
struct ByteReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int
    /// What the bytes are, for errors: "the recording", "the bootstrap".
    let subject: String

    /// Bytes that end too soon, or hold a value no writer writes.
    struct Malformed: Error, CustomStringConvertible {
        var field: String
        var subject = "the recording"
        /// Set when the bytes are there but the value is not one a writer writes.
        var invalid: String?

        var description: String {
            if let invalid { return "\(subject) has an invalid \(field): \(invalid)" }
            return "\(subject) ends in the middle of \(field)"
        }
    }

    init(_ bytes: ArraySlice<UInt8>, subject: String = "the recording") {
        self.bytes = bytes
        self.subject = subject
        index = bytes.startIndex
    }

    /// The error for a value no writer writes.
    func invalid(_ field: String, _ reason: String) -> Malformed { Malformed(field: field, subject: subject, invalid: reason) }

    var isAtEnd: Bool { index >= bytes.endIndex }

    mutating func byte(_ field: String) throws(Malformed) -> UInt8 {
        guard index < bytes.endIndex else { throw Malformed(field: field, subject: subject) }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func unsigned(_ field: String) throws(Malformed) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte(field)
            guard shift < 64 else { throw invalid(field, "a number longer than 64 bits") }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func int(_ field: String) throws(Malformed) -> Int { Int(clamping: try unsigned(field)) }

    mutating func signed(_ field: String) throws(Malformed) -> Int64 { Self.unzigzag(try unsigned(field)) }

    /// What ``ByteWriter/optionalSigned(_:)`` wrote.
    mutating func optionalSigned(_ field: String) throws(Malformed) -> Int64? {
        let raw = try unsigned(field)
        return raw == 0 ? nil : Self.unzigzag(raw - 1)
    }

    static func unzigzag(_ raw: UInt64) -> Int64 { Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1) }

    mutating func string(_ field: String) throws(Malformed) -> String {
        let count = try int(field)
        guard count <= bytes.endIndex - index else { throw Malformed(field: field, subject: subject) }
        defer { index += count }
        return String(decoding: bytes[index..<index + count], as: UTF8.self)
    }

    mutating func optionalString(_ field: String) throws(Malformed) -> String? {
        let count = try int(field)
        guard count > 0 else { return nil }
        guard count - 1 <= bytes.endIndex - index else { throw Malformed(field: field, subject: subject) }
        defer { index += count - 1 }
        return String(decoding: bytes[index..<index + count - 1], as: UTF8.self)
    }

    mutating func bool(_ field: String) throws(Malformed) -> Bool {
        switch try byte(field) {
        case 0: return false
        case 1: return true
        case let other: throw invalid(field, "\(other) is not 0 or 1")
        }
    }

    mutating func double(_ field: String) throws(Malformed) -> Double { Double(bitPattern: try unsigned(field)) }

    mutating func duration(_ field: String) throws(Malformed) -> Duration {
        let seconds = try signed(field)
        return Duration(secondsComponent: seconds, attosecondsComponent: try signed(field))
    }

    /// A count that cannot exceed the bytes left (each element takes at least one byte), so a
    /// corrupt count never reserves memory for billions of elements.
    mutating func count(_ field: String) throws(Malformed) -> Int {
        let count = try int(field)
        guard count <= bytes.endIndex - index else { throw Malformed(field: field, subject: subject) }
        return count
    }

    mutating func array<Element>(_ field: String, _ element: (inout ByteReader) throws(Malformed) -> Element) throws(Malformed) -> [Element] {
        let count = try count(field)
        var values: [Element] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try element(&self)) }
        return values
    }

    mutating func optional<Wrapped>(_ field: String, _ some: (inout ByteReader) throws(Malformed) -> Wrapped) throws(Malformed) -> Wrapped? {
        try bool(field) ? try some(&self) : nil
    }

    mutating func dictionary<Value>(_ field: String, _ value: (inout ByteReader) throws(Malformed) -> Value) throws(Malformed) -> [String: Value] {
        let count = try count(field)
        var values: [String: Value] = [:]
        values.reserveCapacity(count)
        for _ in 0..<count {
            let key = try string(field)
            values[key] = try value(&self)
        }
        return values
    }

    mutating func strings(_ field: String) throws(Malformed) -> [String: String] { try dictionary(field) { input throws(Malformed) in try input.string(field) } }

    /// A string that must be the raw value of `Value`.
    mutating func rawValue<Value: RawRepresentable>(_ field: String, as: Value.Type) throws(Malformed) -> Value where Value.RawValue == String {
        let text = try string(field)
        guard let value = Value(rawValue: text) else { throw invalid(field, "'\(text)' is not one this build knows") }
        return value
    }
}
