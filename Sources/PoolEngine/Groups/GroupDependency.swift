/// A group that must reach a state before this one starts (`after:` in pool.yaml): a cache
/// ready before the API, a migration completed before anything that uses the database.
/// The pool stops in the reverse order.
public struct GroupDependency: Hashable, Sendable, Codable {
    public enum Condition: String, Hashable, Sendable, Codable, CaseIterable {
        /// The group's minimum of workers have been started.
        case started
        /// The group's minimum of workers are ready.
        case ready
        /// The group's workers ran and all exited 0 (a one-shot group, restart policy `never`,
        /// such as a migration).
        case completed
    }

    public var group: GroupReference
    public var condition: Condition

    public init(_ group: GroupReference, _ condition: Condition = .ready) {
        self.group = group
        self.condition = condition
    }
}

/// A dependency with its group resolved to an id.
public struct ResolvedDependency: Hashable, Sendable, Codable {
    public var group: GroupID
    public var condition: GroupDependency.Condition

    public init(group: GroupID, condition: GroupDependency.Condition) {
        self.group = group
        self.condition = condition
    }
}
