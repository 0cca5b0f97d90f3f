import Synchronization

/// A worker's writer of its own activity and latency parts in shared memory, and of the
/// pickup-miss counters of the groups it sends jobs to.
final class WorkerActivityRecorder: Sendable {
    private let segment: SharedSegment
    private let base: Int
    // One writer per part: threads of the worker take turns (this lock: the latency part).
    private let lock = Lock()
    /// The activity part as this process last wrote it, and its writers' lock. While a process
    /// lives it is the part's only writer (the watcher rewrites it only between two processes
    /// of the slot), so the part is read from shared memory once, at the first update, instead
    /// of at each of a job's three (decision 0024).
    private let written = Mutex<WorkerActivity?>(nil)
    /// Wakes the watcher's dozing flight recorder (a control message); called by the writer
    /// whose change found it dozing, outside the lock.
    private let bell: @Sendable () -> Void

    init(segmentName: String, id: WorkerID, bell: @escaping @Sendable () -> Void = {}) throws {
        self.bell = bell
        segment = try SharedSegment.open(name: segmentName, writable: true)
        // A slot kept free for `apply` has group id 0 until a group takes it.
        guard id.rawValue >= 1 && id.rawValue <= segment.slotCount,
            segment.load(segment.slotBase(id) + SharedLayout.Lifecycle.groupID) != 0
        else {
            throw SharedStateError(code: .invalidWorker, message: "worker id \(id) has no slot in \(segmentName)")
        }
        base = segment.slotBase(id)
    }

    /// Advances the heartbeat (``SharedLayout/Activity/heartbeat``): one store, no lock, from
    /// the event loop's thread only.
    func beat() {
        segment.word(base + SharedLayout.Activity.heartbeat).pointee.store(Posix.monotonicNanoseconds(), ordering: .relaxed)
    }

    func update(_ body: (inout WorkerActivity) -> Void) {
        written.withLock { written in
            var activity = written ?? PoolStateReader(segment: segment).readActivity(base)
            body(&activity)
            // Coarse, and never the value it replaces: readers (the quota tracker) take a change
            // of it for activity, and two updates within one tick must still differ. Not held
            // above the last value, so a wall clock set back is followed at once.
            let now = Posix.coarseWallClockNanoseconds()
            activity.lastUpdate = now == activity.lastUpdate ? now &+ 1 : now
            segment.write(sequenceAt: base + SharedLayout.Activity.sequence) {
                activity.forEachWord { offset, value in segment.store(base + offset, value) }
            }
            written = activity
        }
        ringIfRecorderDozes()
    }

    /// Describes the job about to start (``SharedLayout/CurrentJob``): called before the
    /// activity part names it, from the thread that launches it.
    func describeCurrentJob(_ job: Job) {
        typealias C = SharedLayout.CurrentJob
        let sender = UInt64(UInt16(clamping: job.sender?.rawValue ?? 0)) << 48
            | UInt64(UInt16(clamping: job.senderGroup?.rawValue ?? 0)) << 32 | UInt64(UInt32(clamping: job.weight))
        segment.store(base + C.sender, sender)
        segment.store(base + C.priority, UInt64(bitPattern: Int64(job.priority)))
        var head = (UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &head) { raw in
            for (index, byte) in job.payload.prefix(C.headBytes).enumerated() { raw[index] = byte }
        }
        segment.store(base + C.head, head.0)
        segment.store(base + C.head + 8, head.1)
        segment.store(base + C.payloadLength, UInt64(job.payload.count))
    }

    /// Describes the request a reactor worker starts serving (``SharedLayout/CurrentJob``).
    func describeRequest(_ line: some Collection<UInt8>) {
        typealias C = SharedLayout.CurrentJob
        var head = (UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &head) { raw in
            for (index, byte) in line.prefix(C.requestBytes).enumerated() { raw[index] = byte }
        }
        segment.store(base + C.priority, head.0)
        segment.store(base + C.head, head.1)
        segment.store(base + C.head + 8, head.2)
        segment.store(base + C.payloadLength, UInt64(line.count))
        segment.store(base + C.sender, C.requestFlag | Posix.wallClockNanoseconds() / 1_000_000)
    }

    /// The worker serves no request any more.
    func clearRequest() {
        segment.store(base + SharedLayout.CurrentJob.sender, 0)
    }

    /// Adds one job's queue wait and (when it ran) run time to this worker's histograms.
    func observeLatency(wait: UInt64, run: UInt64?) {
        typealias L = SharedLayout.Latency
        lock.withLock {
            segment.write(sequenceAt: base + L.sequence) {
                // Only this worker writes the part, under the lock: plain read-modify-write is safe.
                func observe(_ histogram: Int, _ nanoseconds: UInt64) {
                    let at = base + histogram
                    segment.store(at + L.count, segment.load(at + L.count) &+ 1)
                    segment.store(at + L.sum, segment.load(at + L.sum) &+ nanoseconds)
                    let bucket = at + L.buckets + LatencyHistogram.bucket(for: nanoseconds) * 8
                    segment.store(bucket, segment.load(bucket) &+ 1)
                }
                observe(L.wait, wait)
                if let run { observe(L.run, run) }
            }
        }
        ringIfRecorderDozes()
    }

    /// This worker's running-jobs table, taken over for this process; nil for a worker of a
    /// group that runs no jobs.
    func runningJobsTable(pool: PoolDescription, id: WorkerID) -> RunningJobsTable? {
        RunningJobsTable(segment: segment, id: id, pool: pool)
    }

    /// Counts a job for `group` that found no ready worker with room.
    func countPickupMiss(group: GroupID) {
        segment.countPickupMiss(group: group)
        ringIfRecorderDozes()
    }

    /// After a change: the first writer to find the flight recorder dozing wakes it.
    private func ringIfRecorderDozes() {
        if segment.takeDozeBell() { bell() }
    }
}
