/// What an error escaping a worker's `initialize(worker:)` or `run()` means (other than `WorkerExit`).
public enum UncaughtErrorPolicy: String, Hashable, Sendable, Codable {
    /// The error is fatal: the whole pool stops and `run()` throws it (amphp-pool's behaviour:
    /// an uncaught error is a bug, and restarting would only repeat it).
    case stopPool = "stop-pool"
    /// The error counts as a crash: the restart policy and its backoff decide.
    case restart
}
