import Glibc

/// Demangles Swift symbols (`$s…`) in a text with the Swift runtime's demangler.
enum SwiftDemangler {
    @_silgen_name("swift_demangle")
    private static func swiftDemangle(
        _ mangled: UnsafePointer<CChar>?, _ length: Int, _ output: UnsafeMutablePointer<CChar>?,
        _ outputSize: UnsafeMutablePointer<Int>?, _ flags: UInt32
    ) -> UnsafeMutablePointer<CChar>?

    /// One symbol, or nil when it is not a Swift one.
    static func demangle(_ symbol: Substring) -> String? {
        var name = String(symbol)
        return name.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars -> String? in
                guard let result = swiftDemangle(chars.baseAddress, chars.count, nil, nil, 0) else { return nil }
                defer { free(result) }
                return String(cString: result)
            }
        }
    }

    /// Every word that starts with `$s` or `_$s` (a Swift symbol, as tools print them) demangled.
    static func demangleSymbols(in text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        var word = Substring()
        func flush() {
            if word.hasPrefix("$s") || word.hasPrefix("_$s"), let plain = demangle(word) {
                output += plain
            } else {
                output += word
            }
        }
        var start = text.startIndex
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == " " || character == "\n" || character == "(" || character == ")" || character == "\t" {
                word = text[start..<index]
                flush()
                output.append(character)
                start = text.index(after: index)
            }
            index = text.index(after: index)
        }
        word = text[start..<text.endIndex]
        flush()
        return output
    }
}
