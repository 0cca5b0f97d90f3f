import CPoolShims

#if canImport(Glibc)
import Glibc
#endif

/// A ``TaskJobSchedule`` behind a pthread mutex: the threads of ``TaskThreads`` wait in
/// ``take()`` on a condition variable (`CLOCK_MONOTONIC`) with no timeout while nothing is due,
/// so an idle process's task threads never wake. The main thread waits in
/// ``take(orReadable:)`` instead, in `ppoll` on an eventfd of the queue's and one more
/// descriptor (libdispatch's main queue), so it serves both.
final class TaskJobQueue<Job>: @unchecked Sendable {
    // @unchecked: `schedule`, `waiting`, `polling` and `isStopped` are only touched with `mutex`
    // held; `wakeUp` is written once by `init`.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var schedule = TaskJobSchedule<Job>()
    /// Threads waiting on the condition: an enqueue signals only when one is, so a busy pool
    /// takes no futex call per job.
    private var waiting = 0
    /// Whether the main thread waits in `ppoll`: an enqueue then signals `wakeUp`.
    private var polling = false
    /// What wakes the main thread's `ppoll`; nil for a queue only `take()` drains.
    private let wakeUp: WakeUpEvent?
    private var isStopped = false

    /// What ``take(orReadable:)`` found.
    enum Taken {
        case job(Job)
        /// The other descriptor is readable.
        case readable
        case stopped
    }

    /// - Parameter wakeUp: for the queue of ``take(orReadable:)``, the eventfd it polls.
    init(wakeUp: WakeUpEvent? = nil) {
        self.wakeUp = wakeUp
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        // Due times are CLOCK_MONOTONIC (``Posix/monotonicNanoseconds()``): a change of the
        // wall clock must neither fire a sleep early nor hold it back.
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        wakeUp?.close()
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func enqueue(_ job: Job) {
        pthread_mutex_lock(mutex)
        schedule.enqueue(job)
        wakeWaiters(all: false)
    }

    /// Enqueues `job` to run once the monotonic clock reads `due` (nanoseconds).
    func enqueue(_ job: Job, due: UInt64) {
        pthread_mutex_lock(mutex)
        let isEarliest = schedule.nextDue.map { due < $0 } ?? true
        schedule.enqueue(job, due: due)
        // A thread waiting for a later due time must wait less now; one waiting for nothing
        // must start counting. Broadcast: which waiter watches the clock is not known.
        if isEarliest {
            wakeWaiters(all: true)
        } else {
            pthread_mutex_unlock(mutex)
        }
    }

    /// Called with the mutex held; releases it.
    private func wakeWaiters(all: Bool) {
        if waiting > 0 {
            if all { pthread_cond_broadcast(condition) } else { pthread_cond_signal(condition) }
        }
        let poke = polling
        pthread_mutex_unlock(mutex)
        if poke { wakeUp?.signal() }
    }

    /// The next job to run, waiting for one as long as it takes; nil once ``stop()`` was called.
    func take() -> Job? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !isStopped {
            switch schedule.next(now: Posix.monotonicNanoseconds()) {
            case .run(let job):
                return job
            case .wait(let due):
                waiting += 1
                if let due {
                    var deadline = timespec(tv_sec: Int(due / 1_000_000_000), tv_nsec: Int(due % 1_000_000_000))
                    pthread_cond_timedwait(condition, mutex, &deadline)
                } else {
                    pthread_cond_wait(condition, mutex)
                }
                waiting -= 1
            }
        }
        return nil
    }

    /// The next job, or `.readable` once `descriptor` has input, waiting for either; for one
    /// thread only (the main thread, which also serves libdispatch's main queue), of a queue
    /// made with a `wakeUp`.
    func take(orReadable descriptor: Int32) -> Taken {
        guard let wakeUp else { preconditionFailure("take(orReadable:) on a queue made without a wake-up eventfd") }
        while true {
            pthread_mutex_lock(mutex)
            if isStopped {
                pthread_mutex_unlock(mutex)
                return .stopped
            }
            let now = Posix.monotonicNanoseconds()
            let next = schedule.next(now: now)
            if case .run(let job) = next {
                pthread_mutex_unlock(mutex)
                return .job(job)
            }
            polling = true
            pthread_mutex_unlock(mutex)
            var timeout: Int64 = -1
            if case .wait(let due?) = next { timeout = Int64(clamping: due - min(due, now)) }
            let ready = pt_poll_two_ns(wakeUp.fd, descriptor, timeout)
            pthread_mutex_lock(mutex)
            polling = false
            pthread_mutex_unlock(mutex)
            if ready > 0 && ready & 1 != 0 { wakeUp.consume() }
            if ready > 0 && ready & 2 != 0 { return .readable }
        }
    }

    /// Makes every `take` return nil (`.stopped`), now and from now on; the jobs still queued
    /// stay queued.
    func stop() {
        pthread_mutex_lock(mutex)
        isStopped = true
        pthread_cond_broadcast(condition)
        let poke = polling
        pthread_mutex_unlock(mutex)
        if poke { wakeUp?.signal() }
    }
}
