import Glibc
import PoolEngine

/// A job worker that writes every run to `runs` in the test's directory (`PAYLOAD PID`), so
/// a test counts how often each job really ran, whichever pool ran it. A payload
/// `fail-once:X` fails on its first run anywhere (a marker file remembers it across pools),
/// `fail-always:X` on every run, and `sleep:MS:X` takes MS ms.
struct RecordingJobWorker: WorkerEntryPoint {
    var worker: Worker?
    mutating func initialize(worker: Worker) async throws {
        self.worker = worker
        worker.handleJobs(with: RecordingJobHandler())
    }

    func run() async throws {
        await worker?.awaitTermination()
    }
}

struct RecordingJobHandler: JobHandler {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func handle(_ job: Job) async throws -> [UInt8] {
        let text = job.text
        appendLine("runs", "\(text) \(getpid())")
        if text.hasPrefix("sleep:") {
            let parts = text.split(separator: ":")
            if parts.count > 1, let milliseconds = Int(parts[1]) { try await Task.sleep(for: .milliseconds(milliseconds)) }
        }
        if text.hasPrefix("fail-always:") { throw Failure(description: "failed on purpose: \(text)") }
        if text.hasPrefix("fail-once:") {
            // O_EXCL: exactly one run, in any pool, creates the marker and fails.
            let marker = "\(testDirectory())/failed-\(text.dropFirst("fail-once:".count))"
            let fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            if fd >= 0 {
                close(fd)
                throw Failure(description: "failing once on purpose: \(text)")
            }
        }
        return Array("done \(text)".utf8)
    }
}
