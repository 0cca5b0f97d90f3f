/// One worker death as the watcher saw it, kept after the fact: `pooltop why` prints them.
public struct PostMortem: Hashable, Sendable, Codable {
    /// One log line of the process, as it arrived (seconds since the epoch).
    public struct Line: Hashable, Sendable, Codable {
        public var at: Double
        public var level: String
        public var message: String
    }

    /// One resource sample of the process (taken every second while someone looks at the
    /// pool or a memory quota needs it, every 10 s otherwise).
    public struct Sample: Hashable, Sendable, Codable {
        public var at: Double
        public var rssBytes: UInt64
        public var cpuSeconds: Double
    }

    /// The job the process was running when it died.
    public struct Job: Hashable, Sendable, Codable {
        public var id: UInt64
        /// How long it had run, in seconds.
        public var runningSeconds: Double
        /// Who sent it: `worker 3 (web)`; nil for a job from outside the pool (an operator's,
        /// the console's), or from a build that did not record it.
        public var sender: String? = nil
        public var priority: Int? = nil
        public var weight: Int? = nil
        /// The payload's first 16 bytes (invalid UTF-8 replaced), and its whole length.
        public var payloadHead: String? = nil
        public var payloadBytes: Int? = nil
    }

    /// The request a reactor worker was serving when it died.
    public struct Request: Hashable, Sendable, Codable {
        /// Its first 24 bytes (invalid UTF-8 replaced), and its whole length.
        public var head: String
        public var bytes: Int
        /// How long it had run, in seconds.
        public var runningSeconds: Double
    }

    /// When it died, seconds since the epoch.
    public var at: Double
    public var worker: WorkerID
    public var group: String
    public var pid: Int32
    public var generation: Int
    /// What the kernel said; nil when the process never started.
    public var status: TerminationStatus?
    public var reason: ExitReason
    public var message: String?
    public var uptimeSeconds: Double
    /// Its last ``PostMortemRecorder/linesKept`` log lines (its own, its stdout and stderr for a program).
    public var lines: [Line]
    /// Its resource samples over its last 60 s.
    public var samples: [Sample]
    public var job: Job?
    /// The request a reactor worker said it was serving (``Worker/requestStarted(_:)``).
    public var request: Request? = nil
    /// Every thread's frames, when it was killed as hung.
    public var backtrace: String?
}

// The JSON says the exit as events do (`"status":"signaled","signal":9`), not as Swift's
// synthesized enum coding would (`{"signaled":{"_0":9}}`): `pooltop why --json` is for scripts.
extension PostMortem {
    private enum Keys: String, CodingKey {
        case at, worker, group, pid, generation, status, code, signal, reason, message, uptimeSeconds, lines, samples, job, request, backtrace
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(at, forKey: .at)
        try container.encode(worker, forKey: .worker)
        try container.encode(group, forKey: .group)
        try container.encode(pid, forKey: .pid)
        try container.encode(generation, forKey: .generation)
        try container.encodeExit(status, status: .status, code: .code, signal: .signal)
        try container.encode(reason, forKey: .reason)
        try container.encodeIfPresent(message, forKey: .message)
        try container.encode(uptimeSeconds, forKey: .uptimeSeconds)
        try container.encode(lines, forKey: .lines)
        try container.encode(samples, forKey: .samples)
        try container.encodeIfPresent(job, forKey: .job)
        try container.encodeIfPresent(request, forKey: .request)
        try container.encodeIfPresent(backtrace, forKey: .backtrace)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        at = try container.decode(Double.self, forKey: .at)
        worker = try container.decode(WorkerID.self, forKey: .worker)
        group = try container.decode(String.self, forKey: .group)
        pid = try container.decode(Int32.self, forKey: .pid)
        generation = try container.decode(Int.self, forKey: .generation)
        status = try container.decodeExit(status: .status, code: .code, signal: .signal)
        reason = try container.decode(ExitReason.self, forKey: .reason)
        message = try container.decodeIfPresent(String.self, forKey: .message)
        uptimeSeconds = try container.decode(Double.self, forKey: .uptimeSeconds)
        lines = try container.decode([Line].self, forKey: .lines)
        samples = try container.decode([Sample].self, forKey: .samples)
        job = try container.decodeIfPresent(Job.self, forKey: .job)
        request = try container.decodeIfPresent(Request.self, forKey: .request)
        backtrace = try container.decodeIfPresent(String.self, forKey: .backtrace)
    }
}

