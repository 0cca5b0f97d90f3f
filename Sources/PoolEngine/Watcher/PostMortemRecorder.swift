/// The watcher's side of post-mortems: what it keeps of each slot's current process (its last
/// log lines, samples and backtrace), turned into a ``PostMortem`` when the process dies and
/// appended to the pool's ``PostMortemFile``. Only the watcher loop touches it.
final class PostMortemRecorder {
    static let linesKept = 50
    static let sampleWindow: Double = 60

    private struct Process {
        var generation = 0
        var lines: [PostMortem.Line] = []
        var samples: [PostMortem.Sample] = []
        var backtrace: String?
    }

    private var processes: [WorkerID: Process] = [:]
    private let file: PostMortemFile?

    init(file: PostMortemFile?) {
        self.file = file
    }

    /// A new process took the slot: what was kept belongs to the last one.
    func started(_ id: WorkerID, generation: Int) { processes[id] = Process(generation: generation) }

    func log(_ id: WorkerID, _ record: LogRecord) {
        var process = processes[id] ?? Process()
        process.lines.append(PostMortem.Line(at: record.timestamp, level: record.level, message: record.message))
        if process.lines.count > Self.linesKept { process.lines.removeFirst(process.lines.count - Self.linesKept) }
        processes[id] = process
    }

    func sample(_ id: WorkerID, at: Double, rssBytes: UInt64, cpuSeconds: Double) {
        var process = processes[id] ?? Process()
        process.samples.append(PostMortem.Sample(at: at, rssBytes: rssBytes, cpuSeconds: cpuSeconds))
        process.samples.removeAll { at - $0.at > Self.sampleWindow }
        processes[id] = process
    }

    func backtrace(_ id: WorkerID, _ text: String) {
        processes[id, default: Process()].backtrace = text
    }

    /// The process died: its post-mortem, kept in the file.
    @discardableResult
    /// - Parameter details: the particulars of the job the activity part names (sender, priority,
    ///   weight, payload head), as the worker described it when it started the job.
    /// - Parameter request: the request a reactor worker said it was serving.
    func died(
        _ exit: WorkerExitRecord, activity: WorkerActivity?, details: PostMortem.Job? = nil, request: PostMortem.Request? = nil, at: Double
    ) -> PostMortem {
        let process = processes.removeValue(forKey: exit.id) ?? Process()
        var job: PostMortem.Job?
        if let activity, activity.currentJobID != 0 {
            let since = Double(activity.currentJobSince) / 1e9
            job = details ?? PostMortem.Job(id: activity.currentJobID, runningSeconds: 0)
            job?.id = activity.currentJobID
            job?.runningSeconds = since > 0 ? max(0, at - since) : 0
        }
        var record = PostMortem(
            at: at, worker: exit.id, group: exit.group, pid: exit.pid, generation: process.generation, status: exit.status,
            reason: exit.reason, message: exit.message, uptimeSeconds: exit.uptime.seconds, lines: process.lines,
            samples: process.samples, job: job, backtrace: process.backtrace)
        record.request = request
        file?.append(record)
        return record
    }
}
