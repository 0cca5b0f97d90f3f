/// Appends exposition lines to a byte buffer without going through `String` per number: a
/// 256-worker scrape is about 4,000 lines. `package`: the PostgreSQL queue writes its own
/// families with it (``PublishedMetrics``).
package struct ExpositionWriter {
    package private(set) var bytes: [UInt8] = []

    package init() {}

    package mutating func reserve(_ count: Int) { bytes.reserveCapacity(count) }

    package mutating func header(_ family: PrometheusExposition.Family) {
        append("# HELP ")
        append(family.name)
        bytes.append(0x20)
        // HELP text escapes backslash and newline.
        for byte in family.help.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): append("\\\\")
            case UInt8(ascii: "\n"): append("\\n")
            default: bytes.append(byte)
            }
        }
        append("\n# TYPE ")
        append(family.name)
        bytes.append(0x20)
        append(family.kind.rawValue)
        bytes.append(0x0A)
    }

    /// `{name="value",…}` with values escaped, ready to reuse across families.
    package func labels(_ pairs: [(String, String)]) -> [UInt8] {
        guard !pairs.isEmpty else { return [] }
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (index, (name, value)) in pairs.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: "=\"".utf8)
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
                case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
                case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    package mutating func sample(_ name: String, labels: [UInt8], _ value: UInt64) {
        append(name)
        bytes.append(contentsOf: labels)
        bytes.append(0x20)
        appendInteger(value)
        bytes.append(0x0A)
    }

    package mutating func sample(_ name: String, labels: [UInt8], _ value: Double) {
        append(name)
        bytes.append(contentsOf: labels)
        bytes.append(0x20)
        append(Self.format(value))
        bytes.append(0x0A)
    }

    /// The `_bucket` (cumulative, `le` ascending, then +Inf), `_sum` and `_count` lines of one group.
    package mutating func histogram(_ name: String, group: String, _ histogram: LatencyHistogram) {
        var cumulative: UInt64 = 0
        for index in 0..<LatencyHistogram.bucketCount {
            cumulative &+= index < histogram.buckets.count ? histogram.buckets[index] : 0
            let bound = index < LatencyHistogram.bounds.count ? Self.format(LatencyHistogram.bounds[index]) : "+Inf"
            sample(name + "_bucket", labels: labels([("group", group), ("le", bound)]), cumulative)
        }
        sample(name + "_sum", labels: labels([("group", group)]), histogram.sumSeconds)
        sample(name + "_count", labels: labels([("group", group)]), histogram.count)
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    private mutating func append(_ text: String) { bytes.append(contentsOf: text.utf8) }

    private mutating func appendInteger(_ value: UInt64) {
        guard value > 0 else {
            bytes.append(UInt8(ascii: "0"))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while rest > 0 {
                buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            for index in stride(from: count - 1, through: 0, by: -1) { bytes.append(buffer[index]) }
        }
    }
}
