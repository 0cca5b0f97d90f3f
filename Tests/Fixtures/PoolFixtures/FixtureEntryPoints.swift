import Glibc
import PoolDemo
import PoolEngine

enum FixtureEntryPoints {
    static var all: EntryPoints {
        var entryPoints = EntryPoints()
        entryPoints.register("hello") { Hello() }
        entryPoints.register("wait") { Wait() }
        entryPoints.register("fatal") { Fatal() }
        entryPoints.register("terminate") { Terminate() }
        entryPoints.register("exit-code") { ExitCode() }
        entryPoints.register("exit-when-marked") { ExitWhenMarked() }
        entryPoints.register("boot-crash") { BootCrash() }
        entryPoints.register("ignore-stop") { IgnoreStop() }
        entryPoints.register("restart-once") { RestartOnce() }
        entryPoints.register("start-counter") { StartCounter() }
        entryPoints.register("stuck-initialize") { StuckInitialize() }
        entryPoints.register("lost-channel") { LostChannel() }
        entryPoints.register("logger") { LogLine() }
        entryPoints.register("activity-writer") { ActivityWriter() }
        entryPoints.register("demo-job") { DemoJobWorker() }
        entryPoints.register("job-sender") { JobSender() }
        entryPoints.register("trigger-sender") { TriggerSender() }
        entryPoints.register("line-reactor") { LineReactor() }
        entryPoints.register("line-reactor-bad-deploy") { LineReactor(failAfterFirst: true) }
        entryPoints.register(SocketStrategyReactor.name) { SocketStrategyReactor() }
        entryPoints.register("line-reactor-marked-deploy") { LineReactor(failWhenMarked: true) }
        entryPoints.register("http-hello") { HTTPHello() }
        entryPoints.register("recording-job") { RecordingJobWorker() }
        return entryPoints
    }
}

/// The directory a test gave its workers through the group's environment.
/// With PT_THREAD_BEFORE_WORKER set, starts a thread that only sleeps, as a binary that starts
/// threads before `runIfWorker` would (its fork server must refuse to fork).
func startIdleThreadIfAsked() {
    guard getenv("PT_THREAD_BEFORE_WORKER") != nil else { return }
    var thread = pthread_t()
    pthread_create(&thread, nil, idleThread, nil)
}

private func idleThread(_: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    while true { sleep(1000) }
}

func testDirectory() -> String {
    guard let value = getenv("POOLTOP_TEST_DIR") else { return "/tmp" }
    return String(cString: value)
}

func appendLine(_ file: String, _ line: String) {
    let path = "\(testDirectory())/\(file)"
    let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    guard fd >= 0 else { return }
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

/// Writes a line and returns at once (a clean exit).
struct Hello: WorkerEntryPoint {
    var id = 0
    mutating func initialize(worker: Worker) async throws { id = worker.id.rawValue }
    func run() async throws { appendLine("hello", "\(id) \(getpid())") }
}

/// Waits to be stopped, then records that it finished its run() gracefully.
struct Wait: WorkerEntryPoint {
    var worker: Worker?
    mutating func initialize(worker: Worker) async throws { self.worker = worker }
    func run() async throws {
        guard let worker else { return }
        // The id the environment gives: a standby learns it only from its bootstrap.
        let environmentID = getenv("POOLTOP_WORKER_ID").map { String(cString: $0) } ?? "none"
        appendLine("started", "\(worker.id) \(getpid()) \(worker.generation) \(environmentID)")
        await worker.awaitTermination()
        appendLine("stopped", "\(worker.id) \(getpid())")
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String { "the fixture failed on purpose" }
}

/// Throws an ordinary error from run(): fatal under the default policy.
struct Fatal: WorkerEntryPoint {
    func run() async throws { throw FixtureError() }
}

/// Asks for its slot to stop for good.
struct Terminate: WorkerEntryPoint {
    func run() async throws {
        appendLine("terminated", "\(getpid())")
        throw WorkerExit.terminate("done for good")
    }
}

/// Exits with code 3 right after becoming ready: a crash.
struct ExitCode: WorkerEntryPoint {
    func run() async throws {
        appendLine("crashed", "\(getpid())")
        exit(3)
    }
}

/// Runs until the test creates `exit-PID` in its directory, then exits with code 5.
struct ExitWhenMarked: WorkerEntryPoint {
    func run() async throws {
        let marker = "\(testDirectory())/exit-\(getpid())"
        while access(marker, F_OK) != 0 { try await Task.sleep(for: .milliseconds(10)) }
        exit(5)
    }
}

/// Dies before it is ready: a boot failure.
struct BootCrash: WorkerEntryPoint {
    mutating func initialize(worker: Worker) async throws {
        appendLine("boot", "\(getpid())")
        exit(4)
    }
    func run() async throws {}
}

/// Ignores the stop request entirely; only SIGKILL ends it.
struct IgnoreStop: WorkerEntryPoint {
    func run() async throws {
        appendLine("started", "\(getpid())")
        while true { usleep(100_000) }
    }
}

/// amphp-pool's testRestart entry point: the first incarnation waits to be stopped and
/// counts; the next one terminates itself.
struct RestartOnce: WorkerEntryPoint {
    var worker: Worker?
    mutating func initialize(worker: Worker) async throws { self.worker = worker }
    func run() async throws {
        guard let worker else { return }
        let count = readCount("restart-counter")
        if count >= 1 { throw WorkerExit.terminate("second incarnation") }
        await worker.awaitTermination()
        writeCount("restart-counter", count + 1)
    }
}

/// Counts its starts in a file (under flock), then waits to be stopped.
struct StartCounter: WorkerEntryPoint {
    var worker: Worker?
    mutating func initialize(worker: Worker) async throws { self.worker = worker }
    func run() async throws {
        guard let worker else { return }
        let path = "\(testDirectory())/start-counter"
        let fd = open(path, O_RDWR | O_CREAT, 0o644)
        flock(fd, LOCK_EX)
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &buffer, 31)
        let count = Int(String(decoding: buffer[0..<max(n, 0)], as: UTF8.self)) ?? 0
        let text = Array(String(count + 1).utf8)
        ftruncate(fd, 0)
        _ = pwrite(fd, text, text.count, 0)
        flock(fd, LOCK_UN)
        close(fd)
        await worker.awaitTermination()
    }
}

/// Never finishes initialize(): the start timeout must end it.
struct StuckInitialize: WorkerEntryPoint {
    mutating func initialize(worker: Worker) async throws {
        appendLine("stuck", "\(getpid())")
        while true { usleep(100_000) }
    }
    func run() async throws {}
}

/// Closes its control channel by mistake, lingers a moment, and exits 0 without a report.
struct LostChannel: WorkerEntryPoint {
    func run() async throws {
        close(3)
        appendLine("lost", "\(getpid())")
        usleep(200_000)
        // _exit, not exit: no at-exit work, which under ThreadSanitizer (its report at exit)
        // outlasted the watcher's 1 s grace for a process whose channel closed.
        _exit(0)
    }
}

/// Logs a marker line through the worker logger, then waits to be stopped.
struct LogLine: WorkerEntryPoint {
    var worker: Worker?
    mutating func initialize(worker: Worker) async throws { self.worker = worker }
    func run() async throws {
        guard let worker else { return }
        worker.logger.notice("fixture log line", metadata: ["marker": "42"])
        await worker.awaitTermination()
    }
}

func readCount(_ file: String) -> Int {
    let fd = open("\(testDirectory())/\(file)", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 32)
    let n = read(fd, &buffer, 31)
    return Int(String(decoding: buffer[0..<max(n, 0)], as: UTF8.self)) ?? 0
}

func writeCount(_ file: String, _ value: Int) {
    let fd = open("\(testDirectory())/\(file)", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return }
    let text = Array(String(value).utf8)
    _ = write(fd, text, text.count)
    close(fd)
}

/// Writes its activity part in a tight loop with every counter equal, until stopped: a reader
/// that ever sees two counters differ has read a torn record.
struct ActivityWriter: WorkerEntryPoint {
    var worker: Worker?
    mutating func initialize(worker: Worker) async throws { self.worker = worker }
    func run() async throws {
        guard let worker else { return }
        var value: UInt64 = 0
        while !worker.isStopRequested {
            value += 1
            worker.recordActivity { activity in
                activity.jobsAccepted = value
                activity.jobsProcessed = value
                activity.jobsErrors = value
                activity.jobsRejected = value
                activity.jobsInFlight = value
                activity.inFlightWeight = value
                activity.connectionsAccepted = value
                activity.connectionsProcessed = value
                activity.connectionsErrors = value
                activity.connectionsActive = value
                activity.currentJobID = value
                activity.currentJobSince = value
            }
            if value % 1024 == 0 { await Task.yield() }
        }
    }
}

/// Sends `echo triggered` to group `jobs` each time the test creates the file `trigger` (which
/// it removes), and writes each result to `trigger-result`: jobs between workers that the
/// watcher takes no part in.
struct TriggerSender: WorkerEntryPoint {
    var worker: Worker?
    mutating func initialize(worker: Worker) async throws { self.worker = worker }
    func run() async throws {
        guard let worker else { return }
        let trigger = "\(testDirectory())/trigger"
        while !worker.isStopRequested && !Task.isCancelled {
            guard unlink(trigger) == 0 else {
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            await submitRecording(worker, "echo triggered", to: .name("jobs"), file: "trigger-result")
        }
    }
}

/// Submits `payload` to `group` and appends its result, or its error's code and message, to `file`.
private func submitRecording(_ worker: Worker, _ payload: String, to group: GroupReference, file: String) async {
    do {
        let result = try await worker.jobs.submit(payload, to: group, timeout: .seconds(10))
        appendLine(file, result.text)
    } catch {
        appendLine(file, "error \(error.code.rawValue): \(error.message)")
    }
}

/// Sends the job in JOB_PAYLOAD to the group in JOB_GROUP, writes the outcome to `job-result`,
/// then sends JOB_THEN if set (e.g. `terminate`, to end the job worker) and returns.
struct JobSender: WorkerEntryPoint {
    var worker: Worker?
    mutating func initialize(worker: Worker) async throws { self.worker = worker }
    func run() async throws {
        guard let worker else { return }
        let environment = { (name: String) in getenv(name).map { String(cString: $0) } }
        let group = GroupReference.name(environment("JOB_GROUP") ?? "jobs")
        await submitRecording(worker, environment("JOB_PAYLOAD") ?? "echo hi", to: group, file: "job-result")
        if let then = environment("JOB_THEN") { _ = try? await worker.jobs.submit(then, to: group, timeout: .seconds(10)) }
    }
}
