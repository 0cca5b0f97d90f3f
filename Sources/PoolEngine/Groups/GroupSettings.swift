/// A group's own settings: what its entry point reads beyond the keys every group has, as
/// pool.yaml's `settings:` gives them (the queue's URL and queues for `postgres-queue`, your
/// app's own options for yours).
///
/// Scalars stay text, as YAML wrote them; ``SettingsReader`` turns them into numbers,
/// durations and choices with errors that name the key path. Every worker of the group gets
/// them in its bootstrap (``Worker/group``), and they are part of the group's definition hash,
/// so `pooltop apply` rolls a group whose settings changed. Keep secrets out of them when they
/// can come from the environment instead: `status --json` shows them.
public enum SettingValue: Hashable, Sendable, Codable {
    case scalar(String)
    case list([SettingValue])
    case map([String: SettingValue])

    /// The value as text when it is a scalar.
    public var text: String? {
        if case .scalar(let text) = self { return text }
        return nil
    }
}

/// Checks, and may complete, the settings of a group whose entry point registered it
/// (``EntryPoints/register(_:checkingSettings:_:)``): it runs when the pool is validated, so a
/// mistake is a configuration error with its key path (`groups[2].settings.lease`) and line,
/// before anything starts. It may fill in what the settings imply, such as `jobGroups`.
/// `path` is the group's key path (`groups[2]`).
public typealias SettingsCheck = @Sendable (_ group: inout WorkerGroup, _ path: String) throws(ConfigurationError) -> Void

/// Reads a settings map with errors that name the key path: the typed reads of pool.yaml for
/// an entry point's own keys.
///
/// ```swift
/// let settings = try SettingsReader(group.settings, path: "groups[2].settings", allowed: ["url", "lease"])
/// let lease = try settings.duration("lease", in: .seconds(1)...(.seconds(3600))) ?? .seconds(30)
/// ```
public struct SettingsReader: Sendable {
    /// The key path of this map (`groups[2].settings`, `groups[2].settings.backoff`).
    public let path: String
    public let values: [String: SettingValue]

    /// - Parameter allowed: the known keys; any other is an error naming them.
    public init(_ values: [String: SettingValue], path: String, allowed: [String]) throws(ConfigurationError) {
        self.path = path
        self.values = values
        for key in values.keys.sorted() where !allowed.contains(key) {
            throw ConfigurationError(
                path: keyPath(key), message: "unknown key '\(key)'; known keys here: \(allowed.joined(separator: ", "))")
        }
    }

    /// The key path of `key` in this map.
    public func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let value = values[key] else { return nil }
        guard let text = value.text else { throw ConfigurationError(path: keyPath(key), message: "must be a single value, not a list or a map") }
        return text
    }

    public func integer(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let text = try string(key) else { return nil }
        guard let value = Int(text) else {
            throw ConfigurationError(path: keyPath(key), message: "must be a whole number (got '\(text)')")
        }
        guard range.contains(value) else {
            throw ConfigurationError(
                path: keyPath(key), message: "must be from \(range.lowerBound) to \(range.upperBound) (got \(value))")
        }
        return value
    }

    public func number(_ key: String, in range: ClosedRange<Double>) throws(ConfigurationError) -> Double? {
        guard let text = try string(key) else { return nil }
        // Swift's Double parser also takes "inf", "nan" and hex; a setting is decimal.
        guard text.allSatisfy({ $0.isASCII && ($0.isNumber || ".eE+-".contains($0)) }), let value = Double(text) else {
            throw ConfigurationError(path: keyPath(key), message: "must be a number (got '\(text)')")
        }
        guard range.contains(value) else {
            throw ConfigurationError(
                path: keyPath(key), message: "must be from \(range.lowerBound) to \(range.upperBound) (got \(text))")
        }
        return value
    }

    public func boolean(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let text = try string(key) else { return nil }
        switch text {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw ConfigurationError(path: keyPath(key), message: "must be true or false (got '\(text)')")
        }
    }

    public func duration(_ key: String, in range: ClosedRange<Duration>) throws(ConfigurationError) -> Duration? {
        guard let text = try string(key) else { return nil }
        guard let value = DurationParser.parse(text) else {
            throw ConfigurationError(
                path: keyPath(key), message: "'\(text)' is not a duration; write a number with a unit: 250ms, 10s, 5m, 1h")
        }
        guard range.contains(value) else {
            throw ConfigurationError(
                path: keyPath(key),
                message: "must be from \(DurationParser.format(range.lowerBound)) to \(DurationParser.format(range.upperBound)) (got \(text))")
        }
        return value
    }

    /// A nested map, read with its own known keys.
    public func map(_ key: String, allowed: [String]) throws(ConfigurationError) -> SettingsReader? {
        guard let value = values[key] else { return nil }
        guard case .map(let map) = value else { throw ConfigurationError(path: keyPath(key), message: "must be a mapping of keys to values") }
        return try SettingsReader(map, path: keyPath(key), allowed: allowed)
    }

    /// A nested map whose keys are names the user chooses (queues, jobs).
    public func namedEntries(_ key: String) throws(ConfigurationError) -> [(name: String, value: SettingValue)]? {
        guard let value = values[key] else { return nil }
        guard case .map(let map) = value else { throw ConfigurationError(path: keyPath(key), message: "must be a mapping of names to values") }
        return map.keys.sorted().map { ($0, map[$0]!) }  // Safe: the key comes from the map.
    }

    /// A nested list.
    public func list(_ key: String) throws(ConfigurationError) -> [SettingValue]? {
        guard let value = values[key] else { return nil }
        guard case .list(let list) = value else { throw ConfigurationError(path: keyPath(key), message: "must be a list") }
        return list
    }
}
