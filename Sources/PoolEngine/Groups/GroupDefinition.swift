import Foundation

extension GroupDescription {
    /// A hash of everything that defines what the group runs and how (`status` shows it, so
    /// "did my change take?" has an answer): FNV-1a over the description's JSON with sorted
    /// keys, leaving out what only places the group (its id, slots and retirement).
    /// Never 0, which shared memory reads as "no hash".
    public var definitionHash: UInt64 {
        var definition = self
        definition.id = GroupID(0)
        definition.firstWorkerID = WorkerID(0)
        definition.slots = 0
        definition.retired = false
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain values cannot fail; an empty input would still give a fixed hash.
        let bytes = (try? encoder.encode(definition)) ?? Data()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash == 0 ? 1 : hash
    }

    /// The hash as `status` prints it: 12 hexadecimal digits.
    public static func formatDefinition(_ hash: UInt64) -> String {
        let text = String(hash, radix: 16)
        return String((String(repeating: "0", count: max(0, 16 - text.count)) + text).prefix(12))
    }
}
