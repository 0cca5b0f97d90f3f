/// Stand-ins for the console's few non-ASCII characters on a terminal whose locale is not
/// UTF-8 (`LANG=C`, an old serial console): one ASCII character each, so columns stay aligned.
public enum ASCIIFallback {
    static let table: [Character: Character] = [
        "↑": "^", "↓": "v", "←": "<", "→": ">", "▸": ">", "—": "-", "…": ".", "≥": ">", "≤": "<", "×": "x",
        // The sparkline's eight heights.
        "▁": "_", "▂": ".", "▃": ",", "▄": "-", "▅": "=", "▆": "+", "▇": "*", "█": "#",
    ]

    /// `character` itself when it is ASCII, its stand-in, or `?` for anything else (a worker's
    /// log line in another script, say).
    public static func transliterate(_ character: Character) -> Character {
        if character.isASCII { return character }
        return table[character] ?? "?"
    }

    /// Every character of `text` transliterated.
    public static func transliterate(_ text: String) -> String { String(text.map(transliterate)) }
}
