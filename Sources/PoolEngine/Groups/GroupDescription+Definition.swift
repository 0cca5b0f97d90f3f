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
        var digest = DefinitionDigest()
        digest.add((try? encoder.encode(definition)) ?? Data())
        return digest.value == 0 ? 1 : digest.value
    }

    /// The hash as `status` prints it: 12 hexadecimal digits.
    public static func formatDefinition(_ hash: UInt64) -> String {
        let text = String(hash, radix: 16)
        return String((String(repeating: "0", count: max(0, 16 - text.count)) + text).prefix(12))
    }
}
