import Testing

@testable import PoolEngine

@Suite("What a task thread runs next: due jobs first, then the rest in order, else how long to wait")
struct TaskJobScheduleTests {
    /// Takes every job runnable at `now`, in order.
    func drain(_ schedule: inout TaskJobSchedule<String>, now: UInt64) -> [String] {
        var taken: [String] = []
        while case .run(let job) = schedule.next(now: now) { taken.append(job) }
        return taken
    }

    @Test("jobs to run now come out in the order they went in, across the queue's compaction")
    func fifo() {
        var schedule = TaskJobSchedule<String>()
        var expected: [String] = []
        var taken: [String] = []
        // Interleaved so the head moves past the compaction threshold while jobs remain.
        for round in 0..<10 {
            for index in 0..<50 {
                let job = "\(round).\(index)"
                schedule.enqueue(job)
                expected.append(job)
            }
            for _ in 0..<30 {
                guard case .run(let job) = schedule.next(now: 0) else { break }
                taken.append(job)
            }
        }
        taken += drain(&schedule, now: 0)
        #expect(taken == expected)
        #expect(schedule.isEmpty)
    }

    @Test("nothing queued: wait with no time limit")
    func idle() {
        var schedule = TaskJobSchedule<String>()
        guard case .wait(let until) = schedule.next(now: 100) else {
            Issue.record("an empty schedule gave a job")
            return
        }
        #expect(until == nil)
    }

    @Test("a job due later is held until its time, and the wait ends at its due time")
    func dueLater() {
        var schedule = TaskJobSchedule<String>()
        schedule.enqueue("sleep", due: 1_000)
        guard case .wait(let until) = schedule.next(now: 999) else {
            Issue.record("a job ran before its time")
            return
        }
        #expect(until == 1_000)
        #expect(drain(&schedule, now: 1_000) == ["sleep"])
        #expect(schedule.isEmpty)
    }

    @Test("due jobs come out by due time, ties in order of arrival, and before jobs to run now")
    func order() {
        var schedule = TaskJobSchedule<String>()
        schedule.enqueue("now-1")
        for (name, due) in [("c", UInt64(30)), ("a", 10), ("b1", 20), ("d", 40), ("b2", 20), ("later", 500)] {
            schedule.enqueue(name, due: due)
        }
        schedule.enqueue("now-2")
        #expect(schedule.nextDue == 10)
        #expect(drain(&schedule, now: 100) == ["a", "b1", "b2", "c", "d", "now-1", "now-2"])
        guard case .wait(let until) = schedule.next(now: 100) else {
            Issue.record("a job due at 500 ran at 100")
            return
        }
        #expect(until == 500)
    }

    @Test("a heap of many due times gives them back sorted")
    func heap() {
        var schedule = TaskJobSchedule<String>()
        var generator = SystemRandomNumberGenerator()
        let dues = (0..<500).map { _ in UInt64.random(in: 0..<10_000, using: &generator) }
        for (index, due) in dues.enumerated() { schedule.enqueue("\(due)#\(index)", due: due) }
        let taken = drain(&schedule, now: 10_000).map { UInt64($0.split(separator: "#")[0])! }
        #expect(taken == dues.sorted())
    }
}
