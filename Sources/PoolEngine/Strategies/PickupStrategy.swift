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

/// Why a pickup strategy chose a worker: a strategy's own words, or a built-in strategy's
/// figures, put into words only when read. Building the sentence for every job was 4 % of a
/// busy sender's CPU, and most results are never asked why (decision 0024).
enum PickupReason: Sendable, Hashable {
    case text(String)
    case leastJobs(inFlight: UInt64, ready: Int)
    case leastWeight(inFlight: UInt64, ready: Int)
    case roundRobin(ready: Int)
    case random(ready: Int)

    var text: String {
        switch self {
        case .text(let text): text
        case .leastJobs(let inFlight, let ready): "least jobs in flight (\(inFlight)) of \(ready) ready"
        case .leastWeight(let inFlight, let ready): "least weight in flight (\(inFlight)) of \(ready) ready"
        case .roundRobin(let ready): "round robin over \(ready) ready"
        case .random(let ready): "random among \(ready) ready"
        }
    }

    // The same words are the same reason, however they were kept.
    static func == (lhs: PickupReason, rhs: PickupReason) -> Bool { lhs.text == rhs.text }
    func hash(into hasher: inout Hasher) { hasher.combine(text) }
}

/// A built-in strategy: it keeps its reason as figures (``PickupReason``), which the job
/// client asks for on every job; `pick`, for everyone else, puts them into words.
protocol BuiltInPickup: PickupStrategy {
    func choose(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, PickupReason)?
}

/// A strategy of one's own, called as a built-in one: its reason is its own words.
struct OwnPickup: BuiltInPickup {
    let strategy: any PickupStrategy

    var descriptor: StrategyDescriptor { strategy.descriptor }

    func choose(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, PickupReason)? {
        strategy.pick(from: candidates, weight: weight, priority: priority).map { ($0.0, .text($0.1)) }
    }
}

extension BuiltInPickup {
    public func pick(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, String)? {
        choose(from: candidates, weight: weight, priority: priority).map { ($0.0, $0.1.text) }
    }
}

/// The least busy worker (fewest jobs in flight), even when all are busy; ties rotate. The default.
public final class LeastJobsPickup: BuiltInPickup {
    private let turn = Atomic<Int>(0)
    public init() {}
    public var descriptor: StrategyDescriptor { StrategyDescriptor(name: "least-jobs") }

    func choose(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, PickupReason)? {
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
public final class RoundRobinPickup: BuiltInPickup {
    private let turn = Atomic<Int>(0)
    public init() {}
    public var descriptor: StrategyDescriptor { StrategyDescriptor(name: "round-robin") }

    func choose(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, PickupReason)? {
        guard !candidates.isEmpty else { return nil }
        let sorted = candidates.sorted { $0.id < $1.id }
        let chosen = sorted[turn.add(1, ordering: .relaxed).oldValue % sorted.count]
        return (chosen.id, .roundRobin(ready: sorted.count))
    }
}

/// A ready worker at random.
public struct RandomPickup: BuiltInPickup {
    public init() {}
    public var descriptor: StrategyDescriptor { StrategyDescriptor(name: "random") }

    func choose(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, PickupReason)? {
        guard let chosen = candidates.randomElement() else { return nil }
        return (chosen.id, .random(ready: candidates.count))
    }
}

/// The first idle worker by id, else the first ready one.
public struct FirstAvailablePickup: BuiltInPickup {
    public init() {}
    public var descriptor: StrategyDescriptor { StrategyDescriptor(name: "first-available") }

    func choose(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, PickupReason)? {
        let sorted = candidates.sorted { $0.id < $1.id }
        if let idle = sorted.first(where: { $0.jobsInFlight == 0 }) { return (idle.id, .text("first idle worker")) }
        guard let first = sorted.first else { return nil }
        return (first.id, .text("first ready worker (none idle)"))
    }
}

/// The worker with the least weight in flight, even when all carry some.
public struct ByWeightPickup: BuiltInPickup {
    public init() {}
    public var descriptor: StrategyDescriptor { StrategyDescriptor(name: "by-weight") }

    func choose(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, PickupReason)? {
        guard let chosen = candidates.min(by: { ($0.inFlightWeight, $0.id) < ($1.inFlightWeight, $1.id) }) else { return nil }
        return (chosen.id, .leastWeight(inFlight: chosen.inFlightWeight, ready: candidates.count))
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
