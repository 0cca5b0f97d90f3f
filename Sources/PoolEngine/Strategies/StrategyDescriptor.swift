/// A strategy's name and every parameter it was built with, as it travels to each worker
/// in the bootstrap message (amphp-pool lost these in its workers).
public struct StrategyDescriptor: Hashable, Sendable, Codable {
    public var name: String
    public var parameters: [String: String]

    public init(name: String, parameters: [String: String] = [:]) {
        self.name = name
        self.parameters = parameters
    }
}

/// What every pluggable strategy has: a descriptor that says what it is and how it is set.
public protocol DescribableStrategy: Sendable {
    /// The name and parameters sent to workers, so a worker rebuilds exactly this strategy.
    var descriptor: StrategyDescriptor { get }
}

