/// The code a worker process runs: `initialize(worker:)`, then `run()`.
///
/// The worker stops when `run()` returns or throws. A stop request from the watcher cancels
/// the task running `run()` (Swift cancellation) and wakes ``Worker/awaitTermination()``;
/// a `CancellationError` after a stop request counts as a clean stop.
public protocol WorkerEntryPoint {
    /// Called once before `run()`, before the worker reports ready: set up here (open files,
    /// build clients). Throwing is handled like throwing from `run()`, before the worker is ready.
    ///
    /// It runs on the executor of the worker's `main` (decision 0020): an entry point that
    /// needs no thread of its own to set up starts none before the worker is ready.
    nonisolated(nonsending) mutating func initialize(worker: Worker) async throws
    /// The worker's work. Return to exit cleanly (the group's restart policy decides what
    /// happens next); throw ``WorkerExit`` to say how the exit should be treated.
    func run() async throws
}

extension WorkerEntryPoint {
    nonisolated(nonsending) public mutating func initialize(worker: Worker) async throws {}
}

/// Errors a worker throws to say how its end must be treated.
///
/// Any other error escaping `run()` or `initialize(worker:)` follows the group's
/// ``UncaughtErrorPolicy`` (by default: fatal).
public struct WorkerExit: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// Stop this worker's slot for good; the pool goes on.
        case terminate
        /// Stop the whole pool; `run()` in the watcher throws this message.
        case fatal
        /// Exit as a crash: the restart policy decides, with backoff.
        case restart
    }

    public var code: Code
    public var message: String

    public static func terminate(_ message: String) -> WorkerExit { WorkerExit(code: .terminate, message: message) }
    public static func fatal(_ message: String) -> WorkerExit { WorkerExit(code: .fatal, message: message) }
    public static func restart(_ message: String) -> WorkerExit { WorkerExit(code: .restart, message: message) }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The entry points built into a binary, by name. The watcher and its workers are the same
/// executable: the watcher checks a group's entry point here, a worker finds its own here.
public struct EntryPoints: Sendable {
    private var factories = Registry<@Sendable () -> any WorkerEntryPoint>()
    private var pickups = Registry<@Sendable ([String: String]) -> any PickupStrategy>()
    private var settingsChecks = Registry<SettingsCheck>()

    /// Entry points every pool binary has: the metrics service (``PrometheusGroup``).
    public init() {
        factories[PrometheusGroup.entryPoint] = { PrometheusService() }
    }

    /// Registers a factory under `name`; a later registration of the same name replaces it.
    public mutating func register(_ name: String, _ make: @escaping @Sendable () -> any WorkerEntryPoint) {
        factories[name] = make
    }

    /// Registers a factory whose groups have settings of their own: `check` validates (and may
    /// complete) a group's ``WorkerGroup/settings`` when the pool is validated.
    public mutating func register(
        _ name: String, checkingSettings check: @escaping SettingsCheck, _ make: @escaping @Sendable () -> any WorkerEntryPoint
    ) {
        factories[name] = make
        settingsChecks[name] = check
    }

    /// Runs the settings check registered for the group's entry point, if any.
    func checkSettings(of group: inout WorkerGroup, path: String) throws(ConfigurationError) {
        try settingsChecks[group.entryPoint]?(&group, path)
    }

    /// The registered names.
    public var names: [String] { factories.names }

    func make(_ name: String) -> (any WorkerEntryPoint)? { factories[name]?() }

    /// Registers a pickup strategy of your own under `name`: every worker rebuilds it from the
    /// descriptor's name and parameters, so register it in the same `main` for watcher and workers.
    public mutating func registerPickup(_ name: String, _ make: @escaping @Sendable ([String: String]) -> any PickupStrategy) {
        pickups[name] = make
    }

    func makePickup(_ name: String, parameters: [String: String]) -> (any PickupStrategy)? { pickups[name]?(parameters) }

    /// The names of the pickup strategies registered here.
    public var pickupNames: [String] { pickups.names }
}

/// Values by name, kept in an array: a binary registers a handful, every process (each worker)
/// builds them at start, and the first use of each dictionary type costs the Swift runtime a
/// scan of every protocol-conformance record in the binary, about 75 µs here (decision 0016).
private struct Registry<Value> {
    private var entries: [(name: String, value: Value)] = []

    /// A later value for the same name replaces the earlier one.
    subscript(name: String) -> Value? {
        get { entries.first { $0.name == name }?.value }
        set {
            let index = entries.firstIndex { $0.name == name }
            switch (index, newValue) {
            case (let index?, let value?): entries[index].value = value
            case (let index?, nil): entries.remove(at: index)
            case (nil, let value?): entries.append((name, value))
            case (nil, nil): break
            }
        }
    }

    var names: [String] { entries.map(\.name).sorted() }
}

extension Registry: Sendable where Value: Sendable {}
