import Glibc
import Testing

@testable import PoolEngine

@Suite("The task threads' queue: waiting threads wake for work, for a due time, for the main queue's descriptor")
struct TaskJobQueueTests {
    /// Runs `body` on a thread of its own and returns what it returned (failsafe-bounded).
    func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T? {
        let result = Mutex<T?>(nil)
        let thread = try PosixThread(name: "queue-test") { result.withLock { $0 = body() } }
        let done = await eventually { result.withLock { $0 != nil } }
        if done { thread.join() } else { thread.detach() }
        return result.withLock { $0 }
    }

    @Test("a thread waiting in take() gets a job enqueued from another, and nil after stop()")
    func wakesForWork() async throws {
        let queue = TaskJobQueue<Int>()
        async let taken = onThread { queue.take() }
        // The taker may or may not be waiting yet: either way it must get the job.
        queue.enqueue(7)
        #expect(try await taken == .some(7))
        queue.stop()
        #expect(try await onThread { queue.take() } == .some(nil))
    }

    @Test("a job due later is taken once its time came, after the jobs to run now")
    func dueLater() async throws {
        let queue = TaskJobQueue<String>()
        let due = Posix.monotonicNanoseconds() + 50_000_000
        queue.enqueue("later", due: due)
        queue.enqueue("now")
        let taken = try await onThread { [queue.take(), queue.take()] }
        #expect(taken == [.some("now"), .some("later")])
        #expect(Posix.monotonicNanoseconds() >= due, "the due job was not held until its time")
    }

    static func describe(_ taken: TaskJobQueue<Int>.Taken) -> String {
        switch taken {
        case .job(let job): "job \(job)"
        case .readable: "readable"
        case .stopped: "stopped"
        }
    }

    @Test("the main thread's wait ends for a job, for input on the other descriptor, and at stop")
    func mainThreadWait() async throws {
        let queue = TaskJobQueue<Int>(wakeUp: try WakeUpEvent(context: "test"))
        let (readEnd, writeEnd) = try Posix.pipe()
        defer {
            Posix.close(readEnd)
            Posix.close(writeEnd)
        }
        async let job = onThread { Self.describe(queue.take(orReadable: readEnd)) }
        queue.enqueue(1)
        #expect(try await job == "job 1")

        async let readable = onThread { Self.describe(queue.take(orReadable: readEnd)) }
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
        #expect(try await readable == "readable")

        queue.stop()
        #expect(try await onThread { Self.describe(queue.take(orReadable: readEnd)) } == "stopped")
    }
}
