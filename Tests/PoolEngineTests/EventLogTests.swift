import Testing

@testable import PoolEngine

/// The watcher's log history: per worker, so a chatty worker cannot push a quiet one out.
@Suite("Event log: each worker's history")
struct EventLogTests {
    func line(_ worker: Int, _ text: String, at time: Double) -> PoolEventRecord {
        PoolEventRecord(at: time, event: .workerLog(WorkerID(worker), group: "g", record: LogRecord(level: "info", message: text, timestamp: time)))
    }

    @Test("a chatty worker keeps its last lines; a quiet one keeps all of its own; everything merges in order")
    func perWorker() {
        var log = EventLog(perWorker: 10)
        log.append(line(1, "quiet 1", at: 1))
        log.append(PoolEventRecord(at: 2, event: .groupScaled(group: "g", from: 1, to: 2)))
        for index in 0..<1500 { log.append(line(2, "chatty \(index)", at: 10 + Double(index))) }
        log.append(line(1, "quiet 2", at: 2000))
        #expect(log.history(of: WorkerID(1)).map(\.at) == [1, 2000])
        #expect(log.history(of: WorkerID(2)).count == 10 && log.history(of: WorkerID(2)).last?.at == 1509)
        #expect(log.recent.count == 1000 && log.recent.first?.at == 511, "the whole stream keeps its last 1,000")
        let everything = log.everything
        #expect(everything.map(\.at) == everything.map(\.at).sorted())
        #expect(everything.first?.at == 1, "the quiet worker's first line is still there")
        #expect(everything.filter { $0.worker == WorkerID(1) }.count == 2)
        #expect(log.history(of: [WorkerID(1), WorkerID(2)]).count == 12)
        #expect(log.history(of: WorkerID(3)).isEmpty)
    }

    @Test("a worker's history outlives its restarts: the exit and the next start are in it, in order")
    func acrossRestarts() {
        var log = EventLog(perWorker: 100)
        log.append(PoolEventRecord(at: 1, event: .workerStarting(WorkerID(1), group: "g", pid: 10, generation: 1)))
        log.append(line(1, "first life", at: 2))
        log.append(
            PoolEventRecord(
                at: 3, event: .workerExited(WorkerExitRecord(id: WorkerID(1), group: "g", pid: 10, status: .signaled(9), reason: .signal, message: nil, uptime: .seconds(2)))))
        log.append(PoolEventRecord(at: 4, event: .workerStarting(WorkerID(1), group: "g", pid: 11, generation: 2)))
        log.append(line(1, "second life", at: 5))
        #expect(log.history(of: WorkerID(1)).map(\.type) == ["worker-starting", "worker-log", "worker-exited", "worker-starting", "worker-log"])
    }
}
