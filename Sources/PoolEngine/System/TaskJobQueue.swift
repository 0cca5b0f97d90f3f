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
    // held; `eventFD` is written once by `init`.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var schedule = TaskJobSchedule<Job>()
    /// Threads waiting on the condition: an enqueue signals only when one is, so a busy pool
    /// takes no futex call per job.
    private var waiting = 0
    /// Whether the main thread waits in `ppoll`: an enqueue then writes the eventfd.
    private var polling = false
    private let eventFD: Int32
    private var isStopped = false

    /// What ``take(orReadable:)`` found.
    enum Taken {
        case job(Job)
        /// The other descriptor is readable.
        case readable
        case stopped
    }

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        // Due times are CLOCK_MONOTONIC (``Posix/monotonicNanoseconds()``): a change of the
        // wall clock must neither fire a sleep early nor hold it back.
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        eventFD = pt_eventfd()
    }

    deinit {
        if eventFD >= 0 { Posix.close(eventFD) }
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
        if poke { pokeEventFD() }
    }

    /// Wakes the main thread's `ppoll` (the eventfd is non-blocking: a full counter is no loss).
    private func pokeEventFD() {
        var one: UInt64 = 1
        _ = Glibc.write(eventFD, &one, 8)
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
    /// thread only (the main thread, which also serves libdispatch's main queue).
    func take(orReadable descriptor: Int32) -> Taken {
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
            let ready = pt_poll_two_ns(eventFD, descriptor, timeout)
            pthread_mutex_lock(mutex)
            polling = false
            pthread_mutex_unlock(mutex)
            if ready > 0 && ready & 1 != 0 {
                var count: UInt64 = 0
                _ = Glibc.read(eventFD, &count, 8)
            }
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
        if poke { pokeEventFD() }
    }
}
