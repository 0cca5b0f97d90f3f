/// A job as its handler sees it.
public struct Job: Sendable {
    /// Unique per sending connection; with the sender it identifies the job.
    public let id: UInt64
    public let payload: [UInt8]
    /// Higher runs first; equal priorities run in arrival order.
    public let priority: Int
    /// Counts against the executor's concurrent-weight limit.
    public let weight: Int
    /// The sending worker; nil when an operator sent it (`pooltop job`, the console).
    public let sender: WorkerID?
    public let senderGroup: GroupID?
    /// When the sender gives up on it; the job is cancelled then.
    public let deadline: PoolInstant?

    /// The payload as UTF-8 text.
    public var text: String { String(decoding: payload, as: UTF8.self) }
}

/// Runs the jobs a job worker receives. Register it in `initialize(worker:)` with
/// ``Worker/handleJobs(with:)``; a job worker without one fails at start.
///
/// The job's task is cancelled when its sender cancels or gives up, or the worker stops:
/// long handlers should check `Task.isCancelled` or use cancellable awaits.
public protocol JobHandler: Sendable {
    /// The result bytes for the sender; throw to fail the job (the sender gets the error's description).
    func handle(_ job: Job) async throws -> [UInt8]

    /// Whether a job that arrives at an idle worker starts on the thread that read it and runs
    /// there until its first suspension, so a quick job is answered without a thread hop (the
    /// measured gain is in `docs/decisions/0007-job-client-sockets.md`). While it runs there,
    /// that thread reads no other frame, cancellations included: say true only if a handler
    /// never computes for long before its first `await` (a long computation can begin with
    /// `await Task.yield()`).
    /// Requests read together run there one after another, in one task, while none of them
    /// suspends; once one does, the rest start as tasks of their own, as do jobs that arrive
    /// while others run: those run in parallel. The default is false.
    var startsInline: Bool { get }
}

extension JobHandler {
    public var startsInline: Bool { false }
}

/// A job's result, with who ran it and how long it took.
public struct JobResult: Sendable, Hashable {
    public var payload: [UInt8]
    public var worker: WorkerID
    /// Why the pickup strategy chose that worker.
    public var pickedBecause: String {
        get { reason.text }
        set { reason = .text(newValue) }
    }
    /// As the strategy gave it: the default strategy's words are made only when read.
    var reason: PickupReason
    public var queueWait: Duration
    public var runTime: Duration
    /// The tries it took, this one included: workers that refused it (full or stopping),
    /// could not be reached or died before it started, and retries after a worker died with it
    /// running (see `retries`).
    public var attempts: Int

    /// The payload as UTF-8 text.
    public var text: String { String(decoding: payload, as: UTF8.self) }

    init(payload: [UInt8], worker: WorkerID, reason: PickupReason, queueWait: Duration, runTime: Duration, attempts: Int) {
        self.payload = payload
        self.worker = worker
        self.reason = reason
        self.queueWait = queueWait
        self.runTime = runTime
        self.attempts = attempts
    }
}

/// Why a job ended without a result. Every job ends with a result or one of these, never silence.
public struct JobError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, Codable {
        /// The handler threw; `message` is its error.
        case handlerFailed = "handler-failed"
        /// Every worker tried had a full queue.
        case rejected
        /// The timeout passed.
        case timedOut = "timed-out"
        /// The sender cancelled it.
        case cancelled
        /// The worker running it died or closed the connection mid-job.
        case workerLost = "worker-lost"
        /// No ready worker in the target group (after scaling up, when allowed, within the timeout).
        case noWorkerAvailable = "no-worker-available"
        /// The payload is larger than the frame limit.
        case tooLarge = "too-large"
        /// The sender's group may not send jobs to that group (see `jobGroups`).
        case notAllowed = "not-allowed"
        /// The target rejected the request as malformed.
        case badRequest = "bad-request"
    }

    public var code: Code
    public var message: String
    /// The worker that ran (or refused) it, when one did.
    public var worker: WorkerID?
    /// The tries made before it ended (0 when it ended before any worker was tried).
    public var attempts: Int

    public init(code: Code, message: String, worker: WorkerID? = nil, attempts: Int = 0) {
        self.code = code
        self.message = message
        self.worker = worker
        self.attempts = attempts
    }

    /// The same error, counting `attempts` tries.
    func with(attempts: Int) -> JobError {
        var error = self
        error.attempts = attempts
        return error
    }

    public var description: String {
        if let worker { return "\(code.rawValue) (worker \(worker)): \(message)" }
        return "\(code.rawValue): \(message)"
    }
}

/// A job executor's limits (the seed's job-executor strategy slot).
public struct JobExecutorConfiguration: Hashable, Sendable, Codable {
    /// Jobs run at once.
    public var maxConcurrentJobs: Int
    /// Summed weight of the jobs run at once; 0 for no limit.
    public var maxConcurrentWeight: Int
    /// Jobs waiting beyond those running; past it a job is rejected so the sender tries another worker.
    public var maxQueuedJobs: Int

    public init(maxConcurrentJobs: Int = 16, maxConcurrentWeight: Int = 0, maxQueuedJobs: Int = 256) {
        self.maxConcurrentJobs = maxConcurrentJobs
        self.maxConcurrentWeight = maxConcurrentWeight
        self.maxQueuedJobs = maxQueuedJobs
    }
}
