/// FNV-1a, 64 bits: a cheap, stable digest of a definition (a group's, an envFile's entries),
/// the same in every process and build. Not for anything an attacker chooses to collide.
struct DefinitionDigest {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
    }

    /// A whole word in one step (a change stamp, not a stable digest of bytes).
    mutating func add(word: UInt64) { value = (value ^ word) &* 0x0000_0100_0000_01b3 }
}
