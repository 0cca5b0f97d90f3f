import PoolEngine
import struct Synchronization.Atomic

/// A sequential client asking `/` again and again on a thread of its own until stopped,
/// counting answers by the worker that gave them and every failure with its cause: a new
/// connection per request, or (`keepAlive`) one connection kept until the server closes it.
final class ContinuousLoad: Sendable {
    struct Result: Sendable, CustomStringConvertible {
        var byWorker: [Int: Int] = [:]
        var failures: [String] = []
        var ok: Int { byWorker.values.reduce(0, +) }
        var description: String { "\(ok) answered \(byWorker.sorted { $0.key < $1.key }), \(failures.count) failed \(failures)" }
    }

    /// A class of its own so the client thread can share it before `self` exists.
    private final class Flag: Sendable {
        let raised = Atomic<Bool>(false)
    }

    private let stopping = Flag()
    /// What the client thread has seen so far, shared before `self` exists as `Flag` is.
    private final class Progress: Sendable {
        let result = Mutex(Result())
    }

    private let progress = Progress()
    private let task: Task<Result, any Error>

    /// The answers and failures so far, while the load runs.
    var current: Result { progress.result.withLock { $0 } }

    init(port: Int, keepAlive: Bool = false) {
        let stopping = stopping
        let progress = progress
        task = Task {
            try await TestSupport.blocking {
                var result = Result()
                let connection = HTTPClient.KeepAlive(port: port)
                while !stopping.raised.load(ordering: .relaxed) {
                    var failure = ""
                    let reply =
                        keepAlive
                        ? connection.get("/", failure: &failure) : HTTPClient.getKeepAlive(port: port, "/", times: 1, failure: &failure)?.first
                    if let reply, reply.status == 200 {
                        result.byWorker[reply.worker, default: 0] += 1
                    } else {
                        result.failures.append("request \(result.ok + result.failures.count): \(failure)")
                    }
                    progress.result.withLock { $0 = result }
                }
                return result
            }
        }
    }

    func stop() async throws -> Result {
        stopping.raised.store(true, ordering: .relaxed)
        return try await task.value
    }
}
