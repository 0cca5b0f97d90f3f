/// What a thread of ``TaskThreads`` runs next: jobs to run now, in the order they came, and
/// jobs due at a time (`Task.sleep`), in a heap on the due time with ties in order of arrival.
/// A job already due goes before those that came to run now: it is late. Pure: the caller
/// holds the lock and passes the time, so the order is tested without threads or a clock.
struct TaskJobSchedule<Job> {
    /// What to do next: run a job, or wait (until a time, or until something is enqueued).
    enum Next {
        case run(Job)
        case wait(until: UInt64?)
    }

    private struct Timed {
        var due: UInt64
        var arrival: UInt64
        var job: Job

        func precedes(_ other: Timed) -> Bool { due != other.due ? due < other.due : arrival < other.arrival }
    }

    /// A queue as an array and the index of its head: taking a job is O(1), and the array is
    /// compacted once the taken part is half of it.
    private var ready: [Job?] = []
    private var head = 0
    private var timed: [Timed] = []
    private var arrivals: UInt64 = 0

    var isEmpty: Bool { head == ready.count && timed.isEmpty }

    /// The earliest due time of the jobs that wait for one.
    var nextDue: UInt64? { timed.first?.due }

    mutating func enqueue(_ job: Job) {
        ready.append(job)
    }

    mutating func enqueue(_ job: Job, due: UInt64) {
        arrivals &+= 1
        timed.append(Timed(due: due, arrival: arrivals, job: job))
        siftUp(timed.count - 1)
    }

    /// The next job to run, or how long to wait. `now` is read only when a job is timed: the
    /// clock read was 1–2 % of a busy sender's CPU, inside the queue's lock (decision 0024).
    mutating func next(now: @autoclosure () -> UInt64) -> Next {
        if let first = timed.first, first.due <= now() {
            return .run(removeFirstTimed())
        }
        if head < ready.count {
            // Safe: slots before `head` are taken (nil); those from it on hold jobs.
            let job = ready[head]!
            ready[head] = nil
            head += 1
            if head == ready.count {
                ready.removeAll(keepingCapacity: true)
                head = 0
            } else if head * 2 >= ready.count && head >= 64 {
                ready.removeFirst(head)
                head = 0
            }
            return .run(job)
        }
        return .wait(until: timed.first?.due)
    }

    private mutating func removeFirstTimed() -> Job {
        let first = timed[0].job
        let last = timed.removeLast()
        if !timed.isEmpty {
            timed[0] = last
            siftDown(0)
        }
        return first
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard timed[child].precedes(timed[parent]) else { return }
            timed.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            var first = parent
            for child in [2 * parent + 1, 2 * parent + 2] where child < timed.count && timed[child].precedes(timed[first]) {
                first = child
            }
            guard first != parent else { return }
            timed.swapAt(parent, first)
            parent = first
        }
    }
}
