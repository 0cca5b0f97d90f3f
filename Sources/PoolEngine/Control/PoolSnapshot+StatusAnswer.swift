import FoundationEssentials

/// How the CLI reads a `status` answer back: exactly as the watcher wrote it.
extension PoolSnapshot {
    /// The snapshot in the text of a `status` answer, decoded from that text by Foundation, as
    /// the watcher encoded it (``ControlCommands``). Not through a ``JSONValue``: its numbers are
    /// Doubles, which round a 64-bit integer (a job id, a counter) past 2^53, and one rounded
    /// past `Int64.max` is then text Foundation refuses ("not valid JSON").
    public static func fromStatusAnswer(_ text: String) throws -> PoolSnapshot {
        struct Answer: Decodable { var status: PoolSnapshot }
        return try JSONDecoder().decode(Answer.self, from: Data(text.utf8)).status
    }

    /// The status object's own text in a `status` answer, as the watcher wrote it (so its
    /// integers are exact, for `status --json`); nil for an answer not shaped as the watcher
    /// writes one: `{"ok":true,"status":{…}}`, the status spliced in last (``ControlCommands``).
    /// The key cannot occur earlier: in a string value its quotes would be escaped. The text is
    /// not parsed here; a caller holds the answer parsed already.
    public static func statusText(ofAnswer text: String) -> Substring? {
        guard let key = text.range(of: ControlCommands.statusKey), text.hasSuffix("}") else { return nil }
        let status = text[key.upperBound..<text.index(before: text.endIndex)]
        return status.hasPrefix("{") ? status : nil
    }
}
