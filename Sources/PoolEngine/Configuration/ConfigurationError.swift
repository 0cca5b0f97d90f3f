/// A pool description that cannot run: what is wrong and where (key path, and the line when it came from a file).
public struct ConfigurationError: Error, CustomStringConvertible, Sendable, Hashable {
    /// The key path of the offending value, for example `groups[1].restart.policy`.
    public var path: String
    /// What is wrong, as a sentence an operator can act on.
    public var message: String
    /// The file the description came from, when it came from one.
    public var file: String?
    /// The 1-based line in `file`, when known.
    public var line: Int?

    public init(path: String, message: String, file: String? = nil, line: Int? = nil) {
        self.path = path
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String {
        var location = ""
        if let file { location = file }
        if let line { location += location.isEmpty ? "line \(line)" : ":\(line)" }
        let prefix = location.isEmpty ? "" : "\(location): "
        return path.isEmpty ? "\(prefix)\(message)" : "\(prefix)\(path): \(message)"
    }
}
