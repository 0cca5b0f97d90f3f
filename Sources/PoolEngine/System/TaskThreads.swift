import CPoolShims

#if canImport(Glibc)
import Glibc
#endif
#if compiler(>=6.3)
// The executor factory is SPI in Swift 6.3 (the "custom main and global executors" pitch):
// it is how the runtime itself installs its Dispatch executors, and the only way to replace
// them that every path honours (`Task.yield` and `Task.sleep` no longer go through the old
// enqueue hooks). Decision 0015 says why we take it and how it is turned off.
@_spi(ExperimentalCustomExecutors) @_spi(ExperimentalScheduling) import _Concurrency
#endif
import Synchronization

/// Runs this process's Swift concurrency on threads of its own instead of libdispatch's.
///
/// On Linux, Swift's default executors are libdispatch's, and the first task that runs on them
/// starts libdispatch's work-queue monitor: a timer that wakes a thread of the process once a
/// second for as long as the process lives, busy or idle. A watcher is idle almost all its
/// life, and those wakes were most of what an idle pool cost (decision 0015). With
/// ``install(threadCount:)``, tasks run on a fixed set of threads named `pool-task-N`, main-actor
/// work on the main thread, and `Task.sleep` waits on those threads' own condition variable:
/// an idle process's threads sleep in the kernel until there is work.
///
/// pooltop's `main.swift` calls it first, before `PoolTopCLI.main`; so should a binary of one's own
/// (with `PoolTopCLI.main`, or a ``WorkerPool`` run from `main`). In a worker
/// process it does nothing: workers keep Swift's own executors (their start-up and job path are
/// measured with them). Do not use it where code blocks a task's thread for long (a synchronous
/// read, a lock held across I/O): there is no second pool to grow into, as libdispatch's
/// monitor would.
public enum TaskThreads {
    /// The environment variable that keeps Swift's own executors: `POOLTOP_TASK_THREADS=off`.
    public static let environmentVariable = "POOLTOP_TASK_THREADS"

    private static let installed = Atomic<Bool>(false)

    /// Replaces Swift's main and default executors with ours, unless `POOLTOP_TASK_THREADS=off`.
    ///
    /// Call it on the main thread before any task has run on another: the first statement of
    /// `main.swift`, or of a `@main` type's `main()`. A nonisolated `async` function would
    /// already run on a libdispatch thread, whose monitor then ticks for the life of the
    /// process. Off the main thread it does nothing; so does a second call. Returns whether the
    /// executors are ours.
    /// - Parameter threadCount: threads for tasks, by default one per online processor and at
    ///   least 2 (Swift's own pool is as wide as the processors).
    @discardableResult
    public static func install(threadCount: Int? = nil) -> Bool {
        #if compiler(>=6.3)
        // The main actor's executor drains on the thread that calls this: it must be the main one.
        guard Posix.getenv(environmentVariable) != "off", !WorkerProcess.isWorker, Posix.isMainThread else { return false }
        guard installed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return true
        }
        // Made here, on the main thread (whose identity it keeps), before any thread of ours.
        guard MainThreadExecutor.shared != nil else {
            installed.store(false, ordering: .releasing)
            return false
        }
        let count = max(threadCount ?? Posix.onlineProcessorCount, 2)
        for index in 1...count {
            do {
                try PosixThread(name: "pool-task-\(index)") {
                    let executor = DefaultTaskExecutor.shared
                    while let job = executor.jobs.take() {
                        job.runSynchronously(on: executor.asUnownedTaskExecutor())
                    }
                }.detach()
            } catch {
                // Without a thread the first task would never run: keep Swift's executors
                // while none of ours was started, stop at the threads there are otherwise.
                guard index > 1 else {
                    installed.store(false, ordering: .releasing)
                    return false
                }
                break
            }
        }
        _createExecutors(factory: TaskThreadsFactory.self)
        return true
        #else
        return false
        #endif
    }
}

#if compiler(>=6.3)
/// What the runtime asks for at start-up: our main and default executors.
private enum TaskThreadsFactory: ExecutorFactory {
    // Safe: `install()` hands this factory to the runtime only once `shared` was made.
    static var mainExecutor: any MainExecutor { MainThreadExecutor.shared! }
    static var defaultExecutor: any TaskExecutor { DefaultTaskExecutor.shared }
}

/// The main actor's executor: a queue the main thread drains, with libdispatch's main queue.
/// The runtime calls ``run()`` on the main thread once `main`'s first part has run (an `async`
/// main) and never returns from it.
private final class MainThreadExecutor: MainExecutor, QueueExecutor, Sendable {
    /// Nil when its eventfd cannot be made; first used by `install()` on the main thread.
    static let shared = try? MainThreadExecutor()  // try?: install() then keeps Swift's executors

    let jobs: TaskJobQueue<UnownedJob>
    /// The thread that made it: the main thread (see `shared`).
    private let mainThread = pthread_self()

    private init() throws {
        jobs = TaskJobQueue(wakeUp: try WakeUpEvent(context: "main-actor tasks"))
    }

    func run() throws {
        // Jobs queued on libdispatch's main queue run here too: a task that was already running
        // when `install()` came (the caller of `install()`, when it is a `@MainActor` function
        // such as a `@main` type's `main()`) returns to the main actor through the executor it
        // knew then, the runtime's, whose queue nobody else drains now that `dispatch_main` is
        // never called. Found by a hang.
        let dispatchMainQueue = pt_dispatch_main_queue_handle()
        while true {
            switch jobs.take(orReadable: dispatchMainQueue) {
            case .job(let job): job.runSynchronously(on: asUnownedSerialExecutor())
            case .readable: pt_dispatch_main_queue_drain()
            case .stopped: return
            }
        }
    }

    func stop() { jobs.stop() }

    func checkIsolated() {
        // The contract of `checkIsolated`: trap when the caller is not isolated to this executor.
        precondition(pthread_equal(pthread_self(), mainThread) != 0, "main-actor code ran off the main thread")
    }
}

/// The default (global) executor: a queue the `pool-task-N` threads drain.
private final class DefaultTaskExecutor: TaskExecutor, QueueExecutor, Sendable {
    static let shared = DefaultTaskExecutor()

    let jobs = TaskJobQueue<UnownedJob>()
}

/// An executor that is a ``TaskJobQueue``: jobs to run now, and jobs due at a time
/// (`Task.sleep`), which the threads draining the queue wait for.
private protocol QueueExecutor: SchedulingExecutor {
    var jobs: TaskJobQueue<UnownedJob> { get }
}

extension QueueExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        jobs.enqueue(UnownedJob(job))
    }

    func enqueue<C: Clock>(_ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C) {
        jobs.enqueue(UnownedJob(job), due: DueTime.after(delay))
    }

    func enqueue<C: Clock>(_ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C) {
        jobs.enqueue(UnownedJob(job), due: DueTime.after(clock.now.duration(to: instant)))
    }
}

/// Due times on the monotonic clock. The standard clocks (continuous, suspending) measure in
/// `Duration`; a server does not suspend, so both count from the monotonic clock's now.
private enum DueTime {
    static func after<D: DurationProtocol>(_ delay: D) -> UInt64 {
        let now = Posix.monotonicNanoseconds()
        // A clock of another duration type schedules through `Clock.sleep` of its own, not here;
        // should one reach us, it runs at once rather than never.
        guard let duration = delay as? Duration, duration > .zero else { return now }
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds >= Int64(UInt64.max / 1_000_000_000) ? UInt64.max / 2 : UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
        let (due, overflow) = now.addingReportingOverflow(nanoseconds)
        return overflow ? UInt64.max : due
    }
}
#endif
