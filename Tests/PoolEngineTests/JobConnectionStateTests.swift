import NIOCore
import Testing

@testable import PoolEngine

@Suite("Job connection state machine: roles, answers, the end of a connection, epoll interest")
struct JobConnectionStateTests {
    typealias State = JobConnectionState<Int>

    func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    func result(_ jobID: UInt64) -> JobAnswer {
        .result(JobResultFrame(jobID: jobID, worker: 1, queueWaitNanoseconds: 0, runNanoseconds: 0, payload: []))
    }

    /// Sends `jobID` and makes sure it was accepted; returns what it said.
    func send(_ state: inout State, _ jobID: UInt64, mayPoll: Bool = false, deadline: UInt64 = 1_000) -> (write: ByteBuffer?, poll: Bool) {
        guard case .accepted(let write, let poll, _, _) = state.send(jobID, frame: bytes("job \(jobID)"), deadline: deadline, mayPoll: mayPoll) else {
            Issue.record("job \(jobID) was refused")
            return (nil, false)
        }
        return (write, poll)
    }

    /// A job sent, written, and its sender suspended with `waiter`.
    func waiting(_ state: inout State, _ jobID: UInt64, _ waiter: Int, deadline: UInt64 = 1_000) {
        _ = send(&state, jobID, deadline: deadline)
        _ = state.wrote(left: ByteBuffer(), failed: false)
        _ = state.suspend(jobID, waiter)
    }

    @Test("the first sender becomes the writer; others queue behind it and leave in its next write")
    func writerRole() {
        var state = State(worker: WorkerID(1))
        #expect(send(&state, 1).write == bytes("job 1"))
        #expect(state.isWriting)
        #expect(send(&state, 2).write == nil, "queued for the writer")
        #expect(send(&state, 3).write == nil)
        let more = state.wrote(left: ByteBuffer(), failed: false)
        #expect(more == bytes("job 2job 3"))
        let queued = state.wrote(left: ByteBuffer(), failed: false)
        #expect(queued == nil)
        #expect(!state.isWriting)
    }

    @Test("with many jobs in flight the writer gathers: what others queued while it yielded leaves with its own bytes")
    func gatheringWriter() {
        var state = State(worker: WorkerID(1))
        // Jobs already in flight (written, their senders waiting): with the next, as many as the threshold.
        for jobID in 1..<UInt64(State.batchAbove) { waiting(&state, jobID, Int(jobID)) }
        guard case .accepted(let first, _, _, let few) = state.send(100, frame: bytes("a"), deadline: 1_000, mayPoll: false) else {
            Issue.record("refused")
            return
        }
        #expect(first == bytes("a") && !few, "at the threshold the writer sends at once")
        _ = state.wrote(left: ByteBuffer(), failed: false)
        guard case .accepted(let write, _, _, let gather) = state.send(101, frame: bytes("b"), deadline: 1_000, mayPoll: false) else {
            Issue.record("refused")
            return
        }
        #expect(write == bytes("b") && gather, "above it the writer is told to gather")
        #expect(send(&state, 102).write == nil)
        #expect(send(&state, 103).write == nil)
        #expect(state.wantedInterest == [.peerHangUp, .readable], "nobody else writes them meanwhile")
        #expect(state.takeQueued() == bytes("job 102job 103"))
        #expect(state.takeQueued() == nil)
        #expect(state.wrote(left: ByteBuffer(), failed: false) == nil)
        #expect(!state.isWriting)
    }

    @Test("bytes a full socket did not take stay first and make epoll watch for room")
    func fullSocket() {
        var state = State(worker: WorkerID(1))
        _ = send(&state, 1)
        _ = send(&state, 2)
        let none = state.wrote(left: bytes("b 1"), failed: false)
        #expect(none == nil)
        #expect(state.outbound == bytes("b 1job 2"), "the unsent rest stays ahead of what was queued meanwhile")
        #expect(state.wantedInterest == [.peerHangUp, .readable, .writable])
        let onRoom = state.takeOutbound()
        #expect(onRoom == bytes("b 1job 2"), "the I/O thread becomes the writer on room")
        #expect(state.wantedInterest == [.peerHangUp, .readable])
    }

    @Test("a lone sender polls only when allowed, alone and unqueued; its poll keeps epoll off the answers")
    func polling() {
        var state = State(worker: WorkerID(1))
        #expect(!send(&state, 1, mayPoll: false).poll, "the default policy never polls")
        _ = state.wrote(left: ByteBuffer(), failed: false)
        #expect(!send(&state, 2, mayPoll: true).poll, "another job is in flight")

        var lone = State(worker: WorkerID(1))
        let first = send(&lone, 7, mayPoll: true)
        #expect(first.poll)
        #expect(lone.reader == .poller)
        #expect(lone.wantedInterest == [.peerHangUp], "the answer wakes only the poller")
        _ = lone.wrote(left: ByteBuffer(), failed: false)
        let waiter = lone.answer(7, result(7)).waiter
        #expect(waiter == nil, "not suspended: the answer waits for the poller")
        #expect(lone.isAnswered(7))
        let end = lone.pollEnded(7, answered: true)
        #expect(end.answer.map { if case .result = $0 { true } else { false } } == true)
        #expect(lone.pending.isEmpty)
        #expect(lone.reader == nil)
    }

    @Test("three polls that miss stop a connection from polling, except every 64th job")
    func pollMisses() {
        var state = State(worker: WorkerID(1))
        for jobID: UInt64 in 1...3 {
            #expect(send(&state, jobID, mayPoll: true).poll)
            _ = state.wrote(left: ByteBuffer(), failed: false)
            _ = state.pollEnded(jobID, answered: false)
            _ = state.answer(jobID, result(jobID))
            _ = state.suspend(jobID, 0)
        }
        #expect(!send(&state, 4, mayPoll: true).poll)
    }

    @Test("an answer goes to the suspended sender once; late and duplicate answers are dropped")
    func answers() {
        var state = State(worker: WorkerID(1))
        _ = send(&state, 1)
        let early = state.suspend(1, 41).answer
        #expect(early == nil)
        let first = state.answer(1, result(1)).waiter
        #expect(first == 41)
        let again = state.answer(1, result(1)).waiter
        #expect(again == nil, "answered once")
        let stray = state.answer(99, result(99)).waiter
        #expect(stray == nil, "a job nobody waits for")
    }

    @Test("a cancelled sender gets its waiter back and the worker a cancel frame")
    func cancel() {
        var state = State(worker: WorkerID(1))
        waiting(&state, 1, 5)
        let cancelled = state.cancel(1, cancelFrame: bytes("cancel 1"))
        #expect(cancelled.waiter == 5)
        #expect(cancelled.write == bytes("cancel 1"))
        #expect(state.pending.isEmpty)
    }

    @Test("a deadline times out the waiting job, cancels it on the worker, and names the next deadline")
    func expire() {
        var state = State(worker: WorkerID(1))
        _ = send(&state, 1, deadline: 100)
        _ = state.wrote(left: ByteBuffer(), failed: false)
        _ = send(&state, 2, deadline: 500)
        _ = state.wrote(left: ByteBuffer(), failed: false)
        _ = state.suspend(1, 11)
        _ = state.suspend(2, 12)
        let expired = state.expire(now: 200) { self.bytes("cancel \($0)") }
        #expect(expired.expired == [11])
        #expect(expired.write == bytes("cancel 1"))
        #expect(expired.next == 500)
    }

    @Test("when the worker ends the connection: started jobs are lost, unstarted ones may go elsewhere")
    func endByWorker() {
        var state = State(worker: WorkerID(1))
        for jobID: UInt64 in 1...3 {
            waiting(&state, jobID, Int(jobID))
        }
        state.started([1])
        #expect(state.needsStartedTable(endedByWorker: true))
        #expect(!state.needsStartedTable(endedByWorker: false), "the sender's own close asks nothing")
        // The worker's table says job 2 had started too.
        let ended = state.end("worker 1 died", startedJobs: [2])
        var kinds: [Int: String] = [:]
        for (waiter, answer) in ended {
            switch answer {
            case .lost: kinds[waiter] = "lost"
            case .notStarted: kinds[waiter] = "not-started"
            default: kinds[waiter] = "other"
            }
        }
        #expect(kinds == [1: "lost", 2: "lost", 3: "not-started"])
        let refused = state.send(4, frame: bytes("x"), deadline: 1, mayPoll: false).isRefusedNotStarted
        #expect(refused)
        var unknown = State(worker: WorkerID(1))
        _ = send(&unknown, 1)
        _ = unknown.suspend(1, 1)
        let blind = unknown.end("gone", startedJobs: nil)
        #expect(blind.first.map { if case .lost = $0.1 { true } else { false } } == true, "no table: it may have run")
    }

    @Test("after closing, waiting jobs are answered stopping, and the connection closes once drained")
    func closing() {
        var state = State(worker: WorkerID(1))
        waiting(&state, 1, 1)
        let drained = state.workerClosing()
        #expect(!drained, "a job still waits")
        if case .refused(.error(let error)) = state.send(2, frame: bytes("x"), deadline: 1, mayPoll: false) {
            #expect(error.code == .stopping)
        } else {
            Issue.record("a new job was accepted after closing")
        }
        let answered = state.answer(1, result(1))
        #expect(answered.waiter == 1)
        #expect(answered.drained, "the last answer drains it")
    }

    @Test("the descriptor closes only once the connection ended and no role is held")
    func closeWaitsForRoles() {
        var state = State(worker: WorkerID(1))
        _ = send(&state, 1)  // writer role held
        let claimed = state.claimRead()
        #expect(claimed)
        _ = state.end("gone", startedJobs: nil)
        let whileRoles = state.takeDescriptorToClose()
        #expect(!whileRoles, "a reader and a writer still use it")
        let afterEnd = state.releaseRead()
        #expect(afterEnd == nil, "nothing is written after the end")
        let whileWriting = state.takeDescriptorToClose()
        #expect(!whileWriting)
        let more = state.wrote(left: ByteBuffer(), failed: false)
        #expect(more == nil)
        let closes = state.takeDescriptorToClose()
        #expect(closes)
        let twice = state.takeDescriptorToClose()
        #expect(!twice, "closed once")
        let interest = state.beginApplyingInterest()
        #expect(interest == nil, "no epoll_ctl on a closed descriptor")
    }

    @Test("one interest applier at a time; a change made meanwhile is applied by it before it lets go")
    func interestApplier() {
        var state = State(worker: WorkerID(1))
        _ = send(&state, 1)
        _ = state.wrote(left: ByteBuffer(), failed: false)
        let first = state.beginApplyingInterest()
        #expect(first == [.peerHangUp, .readable])
        let second = state.beginApplyingInterest()
        #expect(second == nil, "someone else applies")
        _ = state.suspend(1, 1)
        _ = state.answer(1, result(1))
        // The job is gone: the applier learns it must take the answers' interest off again.
        let next = state.appliedInterest(first!)
        #expect(next == [.peerHangUp])
        let done = state.appliedInterest([.peerHangUp])
        #expect(done == nil)
        #expect(!state.isApplyingInterest)
    }

    @Test("settling in one turn: an interest to apply first, then the close once the connection ended and nobody uses it")
    func settleSteps() {
        var state = State(worker: WorkerID(1))
        _ = send(&state, 1)
        _ = state.wrote(left: ByteBuffer(), failed: false)
        let apply = state.settleStep()
        #expect(apply == .apply([.peerHangUp, .readable]))
        let nothing = state.applied([.peerHangUp, .readable])
        #expect(nothing == .nothing, "applied, and the connection still runs")
        let again = state.settleStep()
        #expect(again == .nothing, "epoll already has what the state needs")
        _ = state.end("gone", startedJobs: nil)
        let close = state.settleStep()
        #expect(close == .close)
        let twice = state.settleStep()
        #expect(twice == .nothing, "closed once, and no epoll_ctl on a closed descriptor")
    }

    @Test("a read's frames are handled in one turn: answers in order, notices applied, the drain and the settling decided with them")
    func receivedBatch() {
        func frame(_ jobID: UInt64) -> JobFrame {
            .result(JobResultFrame(jobID: jobID, worker: 1, queueWaitNanoseconds: 0, runNanoseconds: 0, payload: [UInt8(jobID)]))
        }
        var state = State(worker: WorkerID(1))
        waiting(&state, 1, 10)
        waiting(&state, 2, 20)
        waiting(&state, 3, 30)
        // The interest the three waiting jobs need is applied, so the batch's own step is the change.
        if case .apply(let interest) = state.settleStep() { _ = state.applied(interest) }
        let first = state.received([.started([3]), frame(2), frame(99), frame(1)])
        #expect(first.waiters.map(\.0) == [20, 10], "in the order the answers came; a stray answer resumes nobody")
        let answered: [UInt64] = first.waiters.map { waiter -> UInt64 in
            if case .result(let result) = waiter.1 { return result.jobID }
            return 0
        }
        #expect(answered == [2, 1], "each sender gets its own answer")
        #expect(!first.closing && !first.drained)
        #expect(first.settle == .nothing, "job 3 still waits: the answers' interest stays")
        #expect(state.pending[3]?.started == true, "the started notice was applied")
        let last = state.received([frame(3), .closing])
        #expect(last.waiters.map(\.0) == [30])
        #expect(last.closing)
        #expect(last.drained, "closing with nothing left waiting drains it")
        #expect(last.settle == .apply([.peerHangUp]), "no job waits: the answers' interest comes off, decided in the same turn")
        let notices = state.received([.started([7])])
        #expect(notices.waiters.isEmpty && notices.settle == .nothing, "no answer, nothing to settle")
    }
}

extension JobConnectionState.SendStart {
    var isRefusedNotStarted: Bool {
        if case .refused(.notStarted) = self { return true }
        return false
    }
}
