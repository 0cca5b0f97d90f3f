/// Why a pool ended with an error.
public struct PoolFailure: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        /// A worker reported a fatal error.
        case fatalWorkerError = "fatal-worker-error"
        /// The pool ended on its own with slots it had given up on.
        case workersFailed = "workers-failed"
    }

    public var code: Code
    public var message: String
    /// The worker the failure came from, when it came from one.
    public var worker: WorkerID?
    public var group: String?

    public var description: String {
        var subject = ""
        if let worker, let group { subject = "worker \(worker) of group '\(group)': " }
        return "\(subject)\(message)"
    }
}
