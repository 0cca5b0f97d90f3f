import PoolEngine

/// The job workers: each job is a text, and the answer is its words, counted, most frequent
/// first. Heavier work would go here too: it runs in processes of its own, apart from HTTP.
struct Words: WorkerEntryPoint {
    var worker: Worker?

    mutating func initialize(worker: Worker) async throws {
        self.worker = worker
        worker.handleJobs(with: CountWords())
    }

    /// Jobs are served until the pool stops this worker.
    func run() async throws {
        await worker?.awaitTermination()
    }
}

struct CountWords: JobHandler {
    func handle(_ job: Job) async throws -> [UInt8] {
        var counts: [String: Int] = [:]
        for word in job.text.lowercased().split(whereSeparator: { !$0.isLetter }) { counts[String(word), default: 0] += 1 }
        let ranked = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        return Array(ranked.map { "\($0.value) \($0.key)\n" }.joined().utf8)
    }
}
