// The hang watchdog: a ready Swift worker's job-server thread (its event loop, in a worker that
// runs no jobs) advances a heartbeat in its shared-memory record; one whose heartbeat stands
// still for its group's `hangTimeout` is hung. So is a program whose `WATCHDOG=1` does not come
// within its `watchdog`. The core then asks for a backtrace of every thread, bounded in time,
// and kills the process once it has it (or once the bound passes): exit reason `hang`, and the
// restart policy decides what follows.
//
// No timer per worker: the core keeps, per slot, the instant its heartbeat must have moved by
// (`hangAt`), the loop reads the heartbeats of the slots that are due and hands them in, and
// a heartbeat that moved pushes `hangAt` on. A worker is thus looked at about once per
// `hangTimeout`, and found hung at most one beat (≤ 1 s) after `hangTimeout` of silence.
extension WatcherCore {
    /// How long a hung process's backtrace may take before the process is killed without it.
    static let backtraceLimit: Duration = .seconds(5)

    func hangTimeout(_ index: Int) -> Duration? { pool.groups[slots[index].groupIndex].hangTimeout }

    /// Ids of the slots whose hang check is due, or would be within half their timeout: the
    /// loop reads their heartbeats. Looking early only moves a deadline on, and one wake-up of
    /// the loop then serves every worker that started about the same time (an idle pool of 8
    /// wakes about once per half `hangTimeout` for all of them, not 8 times).
    func hangChecksDue(at now: PoolInstant) -> [WorkerID] {
        guard slots.contains(where: { slot in slot.hangAt.map { $0 <= now } ?? false && slot.state == .ready && !slot.hung }) else { return [] }
        return slots.indices.compactMap { index in
            let slot = slots[index]
            guard let due = slot.hangAt, let timeout = hangTimeout(index), slot.state == .ready, !slot.hung,
                due <= now + timeout / 2
            else { return nil }
            return slot.id
        }
    }

    mutating func handle(heartbeats: [WorkerID: PoolInstant?], at now: PoolInstant) -> [WatcherAction] {
        var actions: [WatcherAction] = []
        for id in heartbeats.keys.sorted() {
            let index = id.rawValue - 1
            guard slots.indices.contains(index), slots[index].state == .ready, !slots[index].hung,
                slots[index].hangAt != nil, let timeout = hangTimeout(index)
            else { continue }
            // The last sign of life: its last beat, or becoming ready (a beat from before then
            // belongs to its start-up).
            let ready = slots[index].readyAt ?? now
            let beat = heartbeats[id].flatMap { $0 }
            let last = beat.map { max($0, ready) } ?? ready
            let silence = now.duration(since: last)
            if silence < timeout {
                slots[index].hangAt = last + timeout
                continue
            }
            // Said in whole milliseconds: nobody reads a hang to the microsecond.
            let shown = Duration.milliseconds(silence.nanoseconds / 1_000_000)
            actions += hang(index, why: "hung: its heartbeat stood still for \(DurationParser.format(shown)) (hangTimeout \(DurationParser.format(timeout)))", at: now)
        }
        return actions
    }

    /// The slot's process is hung: no new work or connection goes to it, its backtrace is
    /// captured, and it is killed once that is done or ``backtraceLimit`` passed.
    mutating func hang(_ index: Int, why: String, at now: PoolInstant) -> [WatcherAction] {
        slots[index].hung = true
        slots[index].hangAt = nil
        slots[index].watchdogAt = nil
        slots[index].state = .stopping
        slots[index].stopReason = .hang
        slots[index].stopMessage = why
        slots[index].killAt = now + Self.backtraceLimit
        slots[index].killWhy = "\(why); its backtrace took longer than \(DurationParser.format(Self.backtraceLimit))"
        let slot = slots[index]
        return [
            .emit(.workerHung(slot.id, group: groupName(index), pid: slot.pid, why: why)),
            .captureBacktrace(slot.id, generation: slot.generation, pid: slot.pid),
        ]
    }

    /// The backtrace is in (or the capture failed, saying why): told, then the process is killed.
    mutating func backtraceCaptured(_ id: WorkerID, generation: Int, _ text: String) -> [WatcherAction] {
        guard let index = current(id, generation), slots[index].hung, slots[index].state.hasProcess else { return [] }
        let slot = slots[index]
        return [.emit(.workerBacktrace(slot.id, group: groupName(index), pid: slot.pid, backtrace: text))]
            + killNow(index, why: slot.stopMessage ?? "hung")
    }
}
