import PoolEngine

#if canImport(Glibc)
import Glibc
#endif

/// The demo job worker: runs text commands so an operator can exercise the pool.
///
/// `echo TEXT`, `sleep MS`, `cpu MS` (a busy loop), `fail MESSAGE` (the handler throws),
/// `crash` (the process aborts), `exit` (the worker exits cleanly after replying),
/// `terminate` (the worker stops for good after replying), `freeze MS` (blocks the worker's
/// job-server thread, the one that beats its heartbeat, for MS ms: rehearses a hang, see
/// `hangTimeout`), `log N` (logs N numbered lines: rehearses the log history). Anything else
/// is echoed.
public struct DemoJobWorker: WorkerEntryPoint {
    private var worker: Worker?
    private let endings = AsyncStream<DemoJobs.Ending>.makeStream()

    public init() {}

    public mutating func initialize(worker: Worker) async throws {
        self.worker = worker
        worker.handleJobs(with: DemoJobs(worker: worker, endings: endings.continuation))
    }

    public func run() async throws {
        guard let worker else { return }
        // Ends on a stop request, or when a job asked the worker to exit or terminate.
        let ending = await withTaskGroup(of: DemoJobs.Ending?.self) { group in
            group.addTask { [endings] in
                for await ending in endings.stream { return ending }
                return nil
            }
            group.addTask {
                await worker.awaitTermination()
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if ending == .terminate { throw WorkerExit.terminate("a 'terminate' job asked this worker to stop for good") }
    }
}

/// The demo job handler.
public struct DemoJobs: JobHandler {
    enum Ending: Sendable {
        case exit, terminate
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let worker: Worker
    let endings: AsyncStream<Ending>.Continuation

    /// Every command answers at once or suspends first (`cpu` yields before it burns).
    public var startsInline: Bool { true }

    /// Blocks the calling thread (the job server's) without yielding: what a stuck blocking
    /// call looks like to the hang watchdog. A function of its own, so a backtrace names it.
    @inline(never)
    static func freezeEventLoop(milliseconds: Int) {
        var left = max(milliseconds, 0)
        while left > 0 {
            let step = min(left, 100)
            usleep(UInt32(step) * 1000)
            left -= step
        }
    }

    public func handle(_ job: Job) async throws -> [UInt8] {
        // The command is the first word, the argument the rest after one space. Parsed on the
        // bytes: an echo then costs no String at all (it is what the round-trip benchmark runs).
        let payload = job.payload
        var start = payload.startIndex
        while start < payload.endIndex && payload[start] == UInt8(ascii: " ") { start += 1 }
        let space = payload[start...].firstIndex(of: UInt8(ascii: " ")) ?? payload.endIndex
        let argumentBytes = space < payload.endIndex ? payload[(space + 1)...] : []
        if payload[start..<space].elementsEqual("echo".utf8) { return Array(argumentBytes) }
        let command = String(decoding: payload[start..<space], as: UTF8.self)
        let argument = String(decoding: argumentBytes, as: UTF8.self)
        // `sleep` and `cpu` read their first word: a tag may follow (the fault drills tag each job).
        let milliseconds = argument.split(separator: " ").first.flatMap { Int($0) }
        switch command {
        case "sleep":
            let milliseconds = milliseconds ?? 100
            try await Task.sleep(for: .milliseconds(milliseconds))
            return Array("slept \(milliseconds) ms on worker \(worker.id)".utf8)
        case "cpu":
            let milliseconds = milliseconds ?? 100
            // Off the thread that reads this worker's frames (see `startsInline`), so a cancel can arrive.
            await Task.yield()
            let clock = ContinuousClock()
            let end = clock.now + .milliseconds(milliseconds)
            var spins: UInt64 = 0
            while clock.now < end {
                for _ in 0..<10_000 { spins &+= 1 }
                try Task.checkCancellation()
            }
            return Array("burned \(milliseconds) ms of CPU on worker \(worker.id)".utf8)
        case "freeze":
            let milliseconds = milliseconds ?? 1000
            worker.logger.warning("a 'freeze' job blocks the job-server thread of worker \(worker.id) for \(milliseconds) ms")
            // Inline (see `startsInline`): this runs on the job server's thread, before any suspension.
            Self.freezeEventLoop(milliseconds: milliseconds)
            return Array("froze worker \(worker.id) for \(milliseconds) ms".utf8)
        case "log":
            // A chatty worker, to rehearse the log history: N lines at info, numbered.
            let count = min(max(milliseconds ?? 10, 0), 100_000)
            for line in 1...max(count, 1) where count > 0 { worker.logger.info("log line \(line) of \(count) from worker \(worker.id)") }
            return Array("logged \(count) lines on worker \(worker.id)".utf8)
        case "fail":
            throw Failure(description: argument.isEmpty ? "the job failed on purpose" : argument)
        case "crash":
            worker.logger.warning("a 'crash' job aborts worker \(worker.id)")
            abort()
        case "exit":
            endings.yield(.exit)
            return Array("worker \(worker.id) exits".utf8)
        case "terminate":
            endings.yield(.terminate)
            return Array("worker \(worker.id) terminates".utf8)
        default:
            return job.payload
        }
    }
}

/// A service that submits a job now and then and logs the answer: the demo's traffic.
public struct JobSubmitter: WorkerEntryPoint {
    private var worker: Worker?

    public init() {}

    public mutating func initialize(worker: Worker) async throws {
        self.worker = worker
    }

    public func run() async throws {
        guard let worker, let target = worker.group.jobGroups.first.flatMap({ worker.pool.group($0) }) else {
            throw WorkerExit.terminate("the submitter has no jobGroups to send to")
        }
        var count = 0
        while !worker.isStopRequested {
            do {
                try await Task.sleep(for: .seconds(3))
            } catch {
                return
            }
            count += 1
            do {
                let result = try await worker.jobs.submit("echo hello \(count)", to: .id(target.id), timeout: .seconds(5))
                worker.logger.info(
                    "job \(count) answered by worker \(result.worker): \(result.text)",
                    metadata: ["runMicroseconds": "\(result.runTime.components.attoseconds / 1_000_000_000_000)"])
            } catch {
                worker.logger.warning("job \(count) failed: \(error)")
            }
        }
    }
}
