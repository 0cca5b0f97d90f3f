import NIOCore
import Synchronization

/// How the job server's loop serves its senders' lanes (``JobLane``, decision 0031).
extension JobServer {
    /// The lanes of the connections that brought one, and until when the loop looks at the
    /// armed ones (only the loop's thread touches it).
    struct Lanes {
        var served: [UInt64: ServedLane] = [:]
        var spinUntil: UInt64 = 0
        /// Since when each lane found half-written at bedtime has been so.
        var writingSince: [UInt64: UInt64] = [:]

        /// Connection `id` ends: its lane goes with it.
        mutating func forget(_ id: UInt64) {
            served.removeValue(forKey: id)
            writingSince.removeValue(forKey: id)
        }
    }

    /// Puts an answer in its sender's lane if the sender waits for it there. On the loop's
    /// thread (a handler that ran inline) the lane is armed first, before the sender can see
    /// the answer: its next request, sent the moment it has it, then finds the lane polled. From
    /// another thread it is not, since the loop may sleep; it arms the lane at its next turn.
    func reply(_ answer: JobFrame, in served: ServedLane) -> Bool {
        if isOnLoopThread && lanesOpen.load(ordering: .relaxed) && served.lane.clientSpins { served.lane.arm() }
        served.answered.store(true, ordering: .releasing)
        guard served.lane.answer(answer), let jobID = answer.answeredJobID else { return false }
        scheduler.answersWritten(connection: served.connection.id, jobIDs: [jobID])
        return true
    }

    /// One look at the lanes: arms those answered since the last look whose sender spins,
    /// takes the requests posted in armed ones, and once none has had anything for
    /// ``JobLane/serverSpinBudget``, disarms them. Returns whether to stay awake (a lane is
    /// still armed) and whether a request was taken. Runs every turn of a loop with lanes, so
    /// it reads the clock only when a lane is armed or something happened.
    func serveLanes(_ lanes: inout Lanes, inputs: inout [UInt64: ByteBuffer]) -> (awake: Bool, took: Bool) {
        var clock: UInt64?
        func now() -> UInt64 {
            if let clock { return clock }
            let read = Posix.monotonicNanoseconds()
            clock = read
            return read
        }
        let mayArm = lanesOpen.load(ordering: .relaxed)
        var took = false
        var armed: [ServedLane] = []
        var broken: [ServedLane] = []
        for served in lanes.served.values {
            if served.answered.exchange(false, ordering: .acquiring) && mayArm && served.lane.clientSpins && served.lane.arm() {
                lanes.spinUntil = now() + JobLane.serverSpinBudget
            }
            switch served.lane.inbox {
            case .posted:
                lanes.writingSince.removeValue(forKey: served.connection.id)
                took = true
                lanes.spinUntil = now() + JobLane.serverSpinBudget
                if !take(from: served) { broken.append(served) }
            case .polling, .writing:
                armed.append(served)
            case .asleep, .taken:
                break
            }
        }
        for served in broken { end(served.connection, inputs: &inputs, lanes: &lanes) }
        guard !armed.isEmpty else { return (took, took) }
        guard now() >= lanes.spinUntil || !mayArm else { return (true, took) }
        // Time to sleep: each armed lane is disarmed, or has a request coming, which keeps the loop awake.
        var awake = took
        for served in armed {
            let id = served.connection.id
            switch served.lane.disarm() {
            case .asleep, .taken:
                lanes.writingSince.removeValue(forKey: id)
                continue
            case .polling, .posted:
                awake = true
                continue
            case .writing:
                break
            }
            // Copying a request takes a microsecond; a sender preempted meanwhile resumes within
            // a time slice. One that stays in the middle of it this long is not writing a
            // request: its connection is closed (a sender that died is noticed by its socket
            // first), so the loop does not stay awake for it.
            let since = lanes.writingSince[id] ?? now()
            if now() - since >= JobLane.halfWrittenLimit {
                logger.error("job connection \(id): its sender left the job lane half-written for \(JobLane.halfWrittenLimit / 1_000_000) ms; closing it")
                end(served.connection, inputs: &inputs, lanes: &lanes)
                continue
            }
            lanes.writingSince[id] = since
            awake = true
        }
        return (awake, took)
    }

    /// Takes the request posted in a lane and hands it to the scheduler; false when it was not
    /// one whole request (the caller closes the connection).
    private func take(from served: ServedLane) -> Bool {
        do {
            guard let request = try served.lane.takeRequest() else { return true }
            return dispatch(.request(request), from: served.connection, lane: served)
        } catch {
            logger.error("job connection \(served.connection.id): \(error); closing it")
            return false
        }
    }
}

/// A sender's lane as its job worker serves it.
final class ServedLane: Sendable {
    let lane: JobLane
    let connection: JobServerConnection
    /// A job of this connection was answered since the loop last looked (from any thread): the
    /// loop arms the lane again if its sender spins.
    let answered = Atomic<Bool>(false)

    init(lane: JobLane, connection: JobServerConnection) {
        self.lane = lane
        self.connection = connection
    }
}
