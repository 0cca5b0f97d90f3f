import Synchronization

/// A ready worker of a target group, as a pickup strategy sees it (from shared memory).
public struct PickupCandidate: Hashable, Sendable {
    public var id: WorkerID
    public var jobsInFlight: UInt64
    public var inFlightWeight: UInt64

    public init(id: WorkerID, jobsInFlight: UInt64, inFlightWeight: UInt64) {
        self.id = id
        self.jobsInFlight = jobsInFlight
        self.inFlightWeight = inFlightWeight
    }
}

/// Chooses which job worker receives a job; the sending worker's group decides which one it uses.
///
/// `candidates` are the ready workers of the allowed target groups, never the sender itself
/// and never empty. Return nil only to refuse all of them.
public protocol PickupStrategy: DescribableStrategy {
    /// The chosen worker and why, in words an operator reads in `pooltop job`.
    func pick(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, String)?
}

/// The least busy worker (fewest jobs in flight), even when all are busy; ties rotate. The default.
public final class LeastJobsPickup: PickupStrategy {
    private let turn = Atomic<Int>(0)
    public init() {}
    public var descriptor: StrategyDescriptor { StrategyDescriptor(name: "least-jobs") }

    public func pick(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, String)? {
        choose(from: candidates).map { ($0.0, $0.1.text) }
    }

    /// What `pick` chooses, with its reason kept as figures: the job client calls this for
    /// every job, and puts the reason into words only when asked.
    func choose(from candidates: [PickupCandidate]) -> (WorkerID, PickupReason)? {
        // Counted in place: this runs for every job, and needs no array of its own.
        guard let least = candidates.lazy.map(\.jobsInFlight).min() else { return nil }
        let ties = candidates.count { $0.jobsInFlight == least }
        var skip = turn.add(1, ordering: .relaxed).oldValue % ties
        for candidate in candidates where candidate.jobsInFlight == least {
            if skip == 0 { return (candidate.id, .leastJobs(inFlight: least, ready: candidates.count)) }
            skip -= 1
        }
        return nil
    }
}

/// Each ready worker in turn.
public final class RoundRobinPickup: PickupStrategy {
    private let turn = Atomic<Int>(0)
    public init() {}
    public var descriptor: StrategyDescriptor { StrategyDescriptor(name: "round-robin") }

    public func pick(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, String)? {
        guard !candidates.isEmpty else { return nil }
        let sorted = candidates.sorted { $0.id < $1.id }
        let chosen = sorted[turn.add(1, ordering: .relaxed).oldValue % sorted.count]
        return (chosen.id, "round robin over \(sorted.count) ready")
    }
}

/// A ready worker at random.
public struct RandomPickup: PickupStrategy {
    public init() {}
    public var descriptor: StrategyDescriptor { StrategyDescriptor(name: "random") }

    public func pick(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, String)? {
        guard let chosen = candidates.randomElement() else { return nil }
        return (chosen.id, "random among \(candidates.count) ready")
    }
}

/// The first idle worker by id, else the first ready one.
public struct FirstAvailablePickup: PickupStrategy {
    public init() {}
    public var descriptor: StrategyDescriptor { StrategyDescriptor(name: "first-available") }

    public func pick(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, String)? {
        let sorted = candidates.sorted { $0.id < $1.id }
        if let idle = sorted.first(where: { $0.jobsInFlight == 0 }) { return (idle.id, "first idle worker") }
        guard let first = sorted.first else { return nil }
        return (first.id, "first ready worker (none idle)")
    }
}

/// The worker with the least weight in flight, even when all carry some.
public struct ByWeightPickup: PickupStrategy {
    public init() {}
    public var descriptor: StrategyDescriptor { StrategyDescriptor(name: "by-weight") }

    public func pick(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, String)? {
        guard let chosen = candidates.min(by: { ($0.inFlightWeight, $0.id) < ($1.inFlightWeight, $1.id) }) else { return nil }
        return (chosen.id, "least weight in flight (\(chosen.inFlightWeight)) of \(candidates.count) ready")
    }
}

/// Rebuilds pickup strategies from their descriptors, in every process.
public enum PickupStrategies {
    /// The names of the built-in strategies.
    public static let builtIn = ["least-jobs", "round-robin", "random", "first-available", "by-weight"]

    /// The strategy a descriptor names: a built-in one, or one registered with the entry points.
    static func make(_ descriptor: StrategyDescriptor?, registry: EntryPoints?) -> (any PickupStrategy)? {
        switch descriptor?.name ?? "least-jobs" {
        case "least-jobs": return LeastJobsPickup()
        case "round-robin": return RoundRobinPickup()
        case "random": return RandomPickup()
        case "first-available": return FirstAvailablePickup()
        case "by-weight": return ByWeightPickup()
        case let name: return descriptor.flatMap { registry?.makePickup(name, parameters: $0.parameters) }
        }
    }
}
