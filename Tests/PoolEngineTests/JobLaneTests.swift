import NIOCore
import Testing

@testable import PoolEngine

/// The lane's ownership rules, on a real memfd mapped twice (the sender's mapping and the one
/// the worker makes of the passed descriptor), as two processes share it.
@Suite("Job lanes: who may write which area when")
struct JobLaneTests {
    /// The sender's lane and the worker's mapping of the same file.
    func pair() throws -> (sender: JobLane, worker: JobLane) {
        let (sender, fd) = try JobLane.create()
        defer { Posix.close(fd) }
        return (sender, try JobLane.map(passed: fd))
    }

    func frame(_ frame: JobFrame) -> ByteBuffer {
        var bytes = ByteBuffer()
        frame.write(to: &bytes)
        return bytes
    }

    func requestFrame(_ jobID: UInt64, _ text: String = "echo hi") -> JobRequestFrame {
        JobRequestFrame(jobID: jobID, deadline: 0, priority: 0, weight: 1, senderWorker: 0, senderGroup: 0, payload: Array(text.utf8))
    }

    /// A request's bytes, as a sender posts them.
    func request(_ jobID: UInt64, _ text: String = "echo hi") -> ByteBuffer {
        frame(.request(requestFrame(jobID, text)))
    }

    func result(_ jobID: UInt64, _ text: String = "hi") -> JobFrame {
        .result(JobResultFrame(jobID: jobID, worker: 1, queueWaitNanoseconds: 0, runNanoseconds: 0, payload: Array(text.utf8)))
    }

    @Test("a request is posted only while the worker polls; the worker takes it whole, once")
    func postOnlyWhileArmed() throws {
        let (sender, worker) = try pair()
        #expect(worker.inbox == .asleep)
        #expect(!sender.post(request(1)), "asleep: the request goes by the socket")
        #expect(try worker.takeRequest() == nil)
        #expect(worker.arm())
        #expect(worker.inbox == .polling)
        #expect(sender.post(request(2)))
        #expect(!sender.post(request(3)), "one request at a time: the second goes by the socket")
        #expect(worker.inbox == .posted)
        #expect(try worker.takeRequest() == requestFrame(2))
        #expect(try worker.takeRequest() == nil, "taken once")
        #expect(!sender.post(request(4)), "taken, not yet armed again")
        #expect(worker.arm())
        #expect(sender.post(request(5)))
        #expect(try worker.takeRequest() == requestFrame(5))
    }

    @Test("the worker sleeps only by disarming, which a posted request stops until it is taken")
    func disarmRacesPost() throws {
        let (sender, worker) = try pair()
        worker.arm()
        #expect(worker.disarm() == .asleep)
        #expect(!sender.post(request(1)), "once disarmed, a sender uses the socket")
        worker.arm()
        #expect(sender.post(request(2)))
        #expect(worker.disarm() == .posted, "a posted request keeps the worker awake")
        #expect(try worker.takeRequest() == requestFrame(2))
        #expect(worker.disarm() == .taken)
        #expect(!sender.post(request(3)))
    }

    @Test("a request larger than the area goes by the socket, and the lane stays armed")
    func oversizedRequest() throws {
        let (sender, worker) = try pair()
        worker.arm()
        #expect(!sender.post(request(1, String(repeating: "x", count: JobLane.requestArea.count))))
        #expect(worker.inbox == .polling)
        #expect(sender.post(request(2)))
    }

    @Test("an answer goes in only for the job the sender waits for there, and is taken once")
    func answerOnlyWhenExpected() throws {
        let (sender, worker) = try pair()
        #expect(!worker.answer(result(1)), "nobody waits here: the answer goes by the socket")
        sender.expectAnswer(2)
        #expect(!worker.answer(result(1)), "a late answer for another job never matches")
        #expect(try sender.takeAnswer() == nil)
        #expect(worker.answer(result(2)))
        #expect(!worker.answer(result(2)), "answered once")
        #expect(try sender.takeAnswer() == result(2))
        #expect(try sender.takeAnswer() == nil, "taken once")
        #expect(sender.stopWaiting(for: 2) == .nothing)
    }

    @Test("a sender that stops waiting gets the answer by the socket, unless it is already in the lane")
    func stopWaiting() throws {
        let (sender, worker) = try pair()
        sender.expectAnswer(7)
        #expect(sender.stopWaiting(for: 7) == .nothing)
        #expect(!worker.answer(result(7)), "the sender suspended: the socket carries it")
        sender.expectAnswer(8)
        #expect(worker.answer(result(8)))
        #expect(sender.stopWaiting(for: 8) == .ready, "it came just before: the sender takes it from the lane")
        #expect(try sender.takeAnswer() == result(8))
        sender.expectAnswer(9)
        #expect(!worker.answer(result(9, String(repeating: "y", count: JobLane.answerArea.count))), "too large: by the socket")
        #expect(sender.stopWaiting(for: 9) == .nothing)
    }

    @Test("anything but one whole request in the lane is refused as the socket refuses a malformed frame, and the inbox is taken")
    func notOneRequest() throws {
        let (sender, worker) = try pair()
        var two = request(2)
        var third = request(3)
        two.writeBuffer(&third)
        let cases: [(String, ByteBuffer)] = [("a cancel", frame(.cancel(jobID: 1))), ("two requests", two), ("half a header", ByteBuffer(bytes: [0x50, 0x4A]))]
        for (what, bytes) in cases {
            worker.arm()
            #expect(sender.post(bytes))
            #expect(throws: JobFrameError.self, "\(what)") { _ = try worker.takeRequest() }
            #expect(worker.inbox == .taken)
        }
    }

    @Test("the sender says whether it spins, for the worker to arm the lane only then")
    func clientSpins() throws {
        let (sender, worker) = try pair()
        #expect(!worker.clientSpins)
        sender.setClientSpins(true)
        #expect(worker.clientSpins)
        sender.setClientSpins(false)
        #expect(!worker.clientSpins)
    }

    @Test("a file that is not a lane is refused: wrong size, wrong contents")
    func notALane() throws {
        let (mapping, fd) = try Posix.createAnonymousSharedMemory(name: "not-a-lane", size: JobLane.size)
        defer {
            mapping.unmap()
            Posix.close(fd)
        }
        #expect(throws: JobFrameError.self) { _ = try JobLane.map(passed: fd) }
        let (small, smallFD) = try Posix.createAnonymousSharedMemory(name: "small", size: 4096)
        defer {
            small.unmap()
            Posix.close(smallFD)
        }
        #expect(throws: SystemCallError.self) { _ = try JobLane.map(passed: smallFD) }
    }
}
