import Glibc
import struct Synchronization.Atomic
import Testing

@testable import PoolEngine

/// Helpers for tests with real processes: binaries, per-test directories and names,
/// bounded waits, and the check that no process outlives its test.
enum TestSupport {
    /// The build directory holding the test bundle, `PoolFixtures` and `pooltop`.
    static let buildDirectory: String = {
        let exe = (try? Posix.executablePath()) ?? ""
        return String(exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)])
    }()

    static var fixtureExecutable: String { "\(buildDirectory)/PoolFixtures" }
    static var pooltopExecutable: String { "\(buildDirectory)/pooltop" }

    private static let counter = Atomic<Int>(0)

    /// A pool name no other test uses, also used as the tag that marks this test's processes.
    static func uniqueName(_ prefix: String) -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return "t-\(prefix)-\(getpid())-\(n)"
    }

    static func makeDirectory(_ name: String) -> String {
        let path = "/tmp/pooltop-tests/\(name)"
        mkdir("/tmp/pooltop-tests", 0o755)
        mkdir(path, 0o755)
        return path
    }

    /// A runner for fixture workers: the fixture binary, told where to write and how it is tagged.
    static func runner(directory: String, tag: String) -> WorkerRunner {
        WorkerRunner(executable: fixtureExecutable, environment: ["POOLTOP_TEST_DIR": directory, "PT_TEST_TAG": tag])
    }

    static func lines(_ directory: String, _ file: String) -> [String] {
        let bytes = (try? Posix.readFile("\(directory)/\(file)")) ?? []
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    static func write(_ path: String, _ text: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let bytes = Array(text.utf8)
        _ = Glibc.write(fd, bytes, bytes.count)
        close(fd)
    }

    /// Live processes (not zombies) whose environment carries `PT_TEST_TAG=tag`.
    static func taggedProcesses(_ tag: String) -> [pid_t] {
        let needle = Array("PT_TEST_TAG=\(tag)".utf8)
        var result: [pid_t] = []
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = pid_t(name), pid != getpid() else { continue }
            guard !isZombie(pid) else { continue }
            let bytes = (try? Posix.readFile("/proc/\(pid)/environ")) ?? []
            if bytes.split(separator: 0).contains(where: { Array($0) == needle }) { result.append(pid) }
        }
        return result
    }

    /// The tagged processes that are workers or standbys: not a group's fork server (decision
    /// 0028), which comes once a worker of its group is ready and stays.
    static func taggedWorkers(_ tag: String) -> [pid_t] {
        taggedProcesses(tag).filter { !isForkServer($0) }
    }

    /// Waits for a fork server of the tagged pool other than `previous` (one comes once a worker
    /// of its group is ready) and returns it; nil if none came.
    static func forkServer(of tag: String, other previous: pid_t? = nil) async -> pid_t? {
        var found: pid_t?
        _ = await eventually {
            found = taggedProcesses(tag).first { isForkServer($0) && $0 != previous }
            return found != nil
        }
        return found
    }

    /// A group's fork server, by its command line (`worker POOL/GROUP#fork-server`), which its
    /// children rewrite to their slot's.
    static func isForkServer(_ pid: pid_t) -> Bool {
        let bytes = (try? Posix.readFile("/proc/\(pid)/cmdline")) ?? []
        return String(decoding: bytes, as: UTF8.self).contains("#fork-server")
    }

    /// The parent pid in `/proc/PID/stat` (nil when it is gone).
    static func parent(of pid: pid_t) -> pid_t? { ProcStat(process: "\(pid)")?.parent }

    /// `/proc/PID/comm` without its newline.
    static func processName(_ pid: pid_t) -> String {
        let bytes = (try? Posix.readFile("/proc/\(pid)/comm")) ?? []
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .newlines)
    }

    /// Creates an empty file (a marker a fixture waits for).
    static func touch(_ path: String) {
        let fd = open(path, O_WRONLY | O_CREAT, 0o644)
        if fd >= 0 { close(fd) }
    }

    static func isZombie(_ pid: pid_t) -> Bool {
        guard let state = processState(pid) else { return true }
        return state == "Z" || state == "X"
    }

    /// The state letter of `/proc/PID/stat` (`R`, `S`, `T` stopped, `Z` …), nil when it is gone.
    static func processState(_ pid: pid_t) -> Character? {
        guard let bytes = try? Posix.readFile("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        // The state follows the command name in parentheses, which may itself contain spaces.
        guard let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].drop { $0 == " " }.first
    }

    /// Stops every process tagged `tag` with SIGSTOP and returns once each of them is stopped,
    /// scanning again for any the first scan did not list. SIGSTOP is delivered asynchronously:
    /// a process sent one but not yet stopped still runs, and could see another die and act on
    /// it, which a test that means "all at once" must not allow.
    static func freezeTagged(_ tag: String) async -> [pid_t] {
        var frozen: Set<pid_t> = []
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let listed = Set(taggedProcesses(tag))
            for pid in listed.subtracting(frozen) { kill(pid, SIGSTOP) }
            // Each listed process stopped (T), or gone.
            while ContinuousClock.now < deadline, listed.contains(where: { pid in processState(pid).map { $0 != "T" && $0 != "Z" && $0 != "X" } ?? false }) {
                try? await Task.sleep(for: .milliseconds(1))
            }
            frozen.formUnion(listed)
            if Set(taggedProcesses(tag)).isSubset(of: frozen) { break }
        }
        return frozen.sorted()
    }

    static func isAlive(_ pid: pid_t) -> Bool { kill(pid, 0) == 0 && !isZombie(pid) }

    /// Whether `pid` is gone entirely: exited and reaped, not even a zombie.
    static func isReaped(_ pid: pid_t) -> Bool { kill(pid, 0) == -1 && errno == ESRCH }

    /// Polls `condition` every 20 ms until it holds or `timeout` passes (a failsafe, not a synchronisation).
    static func eventually(timeout: Duration = .seconds(15), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    /// Runs blocking client code (sockets with timeouts) on an OS thread of its own: on the
    /// cooperative pool it could hold one of its two threads while the pool under test needs it.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        let result = Mutex<T?>(nil)
        try await DedicatedThread.run(name: "test-client") {
            let value = body()
            result.withLock { $0 = value }
        }
        return result.withLock { $0! }
    }

    /// Fails the test if any process tagged for it is still alive (after a short failsafe wait).
    /// - Parameter leavesRuntime: The test leaves the pool's runtime directory or segment on
    ///   purpose (a SIGKILLed watcher, a refused or planted name), and checks or removes it itself.
    static func expectNoOrphans(_ tag: String, leavesRuntime: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) async {
        let gone = await eventually(timeout: .seconds(5)) { taggedProcesses(tag).isEmpty }
        #expect(gone, "processes outlived the test: \(taggedProcesses(tag))", sourceLocation: sourceLocation)
        if !gone { for pid in taggedProcesses(tag) { kill(pid, SIGKILL) } }
        guard !leavesRuntime else { return }
        // Where the tag is a pool's name (most tests), its runtime directory and segment went
        // with it: nothing a stopped pool leaves behind, whatever its workers published.
        let directory = RuntimeDirectory.path(pool: tag)
        let segment = "/dev/shm\(SharedLayout.segmentName(pool: tag, uid: Posix.userID))"
        let paths: [String] = [directory, segment]
        let removed = await eventually(timeout: .seconds(5)) { paths.allSatisfy { access($0, F_OK) != 0 } }
        let left = paths.filter { access($0, F_OK) == 0 }
        #expect(removed, "left behind: \(left) \((try? Posix.listDirectory(directory)) ?? [])", sourceLocation: sourceLocation)
    }

}

/// Records a pool's events for assertions.
final class EventRecorder: Sendable {
    private let storage = Mutex<[PoolEvent]>([])
    private let ended = Mutex(false)
    /// Recorders by pool, so `RunningPool.finish()` can wait until each has seen the last event.
    private static let byPool = Mutex<[ObjectIdentifier: [EventRecorder]]>([:])

    init(_ pool: WorkerPool) {
        let stream = pool.events()
        Self.byPool.withLock { $0[ObjectIdentifier(pool), default: []].append(self) }
        Task { [self] in
            for await event in stream { storage.withLock { $0.append(event) } }
            ended.withLock { $0 = true }
        }
    }

    /// Waits (failsafe-bounded) until every recorder of `pool` has received the end of its stream.
    static func drain(_ pool: WorkerPool) async {
        let recorders = byPool.withLock { $0.removeValue(forKey: ObjectIdentifier(pool)) ?? [] }
        for recorder in recorders {
            _ = await TestSupport.eventually(timeout: .seconds(10)) { recorder.ended.withLock { $0 } }
        }
    }

    var all: [PoolEvent] { storage.withLock { $0 } }

    var readyPIDs: [(WorkerID, Int32)] {
        all.compactMap { if case .workerReady(let id, _, let pid, _) = $0 { return (id, pid) } else { return nil } }
    }

    var exits: [WorkerExitRecord] {
        all.compactMap { if case .workerExited(let record) = $0 { return record } else { return nil } }
    }

    var backoffDelays: [Duration] {
        all.compactMap { if case .workerBackingOff(_, _, let delay) = $0 { return delay } else { return nil } }
    }

    var starts: Int {
        all.filter { if case .workerStarting = $0 { return true } else { return false } }.count
    }

    func waitFor(timeout: Duration = .seconds(15), _ condition: (EventRecorder) -> Bool) async -> Bool {
        await TestSupport.eventually(timeout: timeout) { condition(self) }
    }
}

/// Runs `pool.run()` in a task; `finish` waits for it with a failsafe.
struct RunningPool {
    let pool: WorkerPool
    let task: Task<Result<Void, any Error>, Never>

    init(_ pool: WorkerPool) {
        self.pool = pool
        task = Task {
            do {
                try await pool.run()
                return .success(())
            } catch {
                return .failure(error)
            }
        }
    }

    /// The outcome of `run()`. Failsafe: if it has not ended within `timeout`, the test fails
    /// and the pool is stopped twice (the second stop kills what is left) so nothing leaks.
    func finish(within timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation) async
        -> Result<Void, any Error>
    {
        let watchdog = Task { [pool] in
            do {
                try await Task.sleep(for: timeout)
            } catch {
                return
            }
            Issue.record("run() did not return within \(timeout)", sourceLocation: sourceLocation)
            pool.stop()
            pool.stop()
        }
        let result = await task.value
        watchdog.cancel()
        // The pool has ended its event streams; let the recorders take in the last events.
        await EventRecorder.drain(pool)
        return result
    }
}

extension EventRecorder {
    /// The pool's standby process once there is exactly one: a process tagged for the pool that
    /// is none of its ready workers (nil if none came within the wait).
    func standby(of tag: String) async -> pid_t? {
        var found: [pid_t] = []
        _ = await TestSupport.eventually {
            let workers = Set(readyPIDs.map(\.1))
            found = TestSupport.taggedWorkers(tag).filter { !workers.contains($0) }
            return found.count == 1
        }
        return found.count == 1 ? found[0] : nil
    }
}
