import Foundation
import Testing

@testable import PoolEngine

/// The flight recorder's frames and ring file: what goes in comes out, the ring keeps the newest
/// frames whole, and a frame torn by a kill or a wrap is never read.
@Suite("Flight recording on disk")
struct FlightRecordingTests {
    func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pooltop-flight-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A pool of two groups with slots in every state, counters, exits and histograms.
    func sampleFrame(at time: Double) -> FlightFrame {
        var groups = [
            GroupSnapshot(id: 1, name: "jobs", kind: .job, min: 1, max: 4, desired: 2, running: 2, ready: 1, scalingEvents: 3, pickupMisses: 7),
            GroupSnapshot(id: 2, name: "web", kind: .reactor, min: 0, max: 1, desired: 0, running: 0, ready: 0),
        ]
        groups[0].definition = "0123456789ab"
        groups[1].waitingFor = "jobs (ready)"
        var busy = WorkerActivity()
        busy.jobsAccepted = 1_000_001
        busy.jobsProcessed = 1_000_000
        busy.jobsErrors = 5
        busy.jobsRejected = 2
        busy.jobsInFlight = 1
        busy.inFlightWeight = 3
        busy.connectionsAccepted = 9
        busy.connectionsProcessed = 8
        busy.connectionsErrors = 1
        busy.connectionsActive = 1
        busy.currentJobID = 42
        busy.currentJobSince = UInt64((time - 0.25) * 1e9)
        busy.lastUpdate = UInt64((time - 0.001) * 1e9)
        busy.jobsProcessedBeforeStart = 10
        var ready = WorkerSnapshot(
            id: WorkerID(1), group: "jobs", groupID: 1, pid: 4242, state: .ready, generation: 3, restarts: 2,
            firstStartedAt: time - 3600, startedAt: time - 60, readyAt: time - 59.99, finishedAt: nil, backoffUntil: nil,
            lastExit: WorkerSnapshot.ExitSnapshot(status: "signaled", code: nil, signal: 9, reason: .signal, at: time - 61),
            activity: busy, rssBytes: 31_457_280, cpuSeconds: 12.345678)
        ready.exits = [.signal: 2, .hang: 1]
        ready.queueWait.count = 2
        ready.queueWait.sumNanoseconds = 150_000
        ready.queueWait.buckets = [UInt64](repeating: 0, count: LatencyHistogram.bucketCount)
        ready.queueWait.buckets[1] = 1
        ready.queueWait.buckets[3] = 1
        let backoff = WorkerSnapshot(
            id: WorkerID(2), group: "jobs", groupID: 1, pid: 0, state: .backoff, generation: 1, restarts: 1,
            firstStartedAt: time - 10, startedAt: time - 10, readyAt: nil, finishedAt: time - 1, backoffUntil: time + 2,
            lastExit: WorkerSnapshot.ExitSnapshot(status: "exited", code: 3, signal: nil, reason: .crash, at: time - 1),
            activity: WorkerActivity(), rssBytes: 0, cpuSeconds: 0)
        let stopped = WorkerSnapshot(
            id: WorkerID(5), group: "web", groupID: 2, pid: 0, state: .stopped, generation: 0, restarts: 0, firstStartedAt: nil,
            startedAt: nil, readyAt: nil, finishedAt: nil, backoffUntil: nil, lastExit: nil, activity: WorkerActivity(), rssBytes: 0,
            cpuSeconds: 0)
        let pool = PoolSnapshot.PoolInfo(
            name: "flight", pid: 777, startedAt: time - 3600, uptimeSeconds: 3600,
            restarts: PoolSnapshot.RestartCounts(hard: 1, soft: 4), state: .running)
        let events: [PoolEventRecord] = [
            PoolEventRecord(at: time - 0.9, event: .workerStarting(WorkerID(1), group: "jobs", pid: 4242, generation: 3)),
            PoolEventRecord(at: time - 0.8, event: .workerReady(WorkerID(1), group: "jobs", pid: 4242, startup: .milliseconds(12))),
            PoolEventRecord(
                at: time - 0.7,
                event: .workerExited(
                    WorkerExitRecord(
                        id: WorkerID(2), group: "jobs", pid: 4243, status: .exited(3), reason: .crash, message: "boom",
                        uptime: .seconds(9)))),
            PoolEventRecord(at: time - 0.6, event: .workerBackingOff(WorkerID(2), group: "jobs", delay: .seconds(2))),
            PoolEventRecord(at: time - 0.5, event: .workerHung(WorkerID(1), group: "jobs", pid: 4241, why: "still for 1s")),
            PoolEventRecord(at: time - 0.5, event: .workerBacktrace(WorkerID(1), group: "jobs", pid: 4241, backtrace: "#0 main\n#1 start")),
            PoolEventRecord(at: time - 0.4, event: .groupScaled(group: "jobs", from: 1, to: 2)),
            PoolEventRecord(at: time - 0.3, event: .groupRolling(group: "jobs", .replaced(WorkerID(1), by: WorkerID(3), done: 1, of: 2))),
            PoolEventRecord(at: time - 0.3, event: .groupRolling(group: "jobs", .failed(replaced: 1, of: 2, why: "not ready"))),
            PoolEventRecord(at: time - 0.2, event: .groupWaiting(group: "web", for: "jobs (ready)")),
            PoolEventRecord(at: time - 0.2, event: .workerStopRequested(WorkerID(1), group: "jobs", reason: .restart)),
            PoolEventRecord(at: time - 0.2, event: .workerKilled(WorkerID(1), group: "jobs", pid: 4241, why: "stop timeout")),
            PoolEventRecord(at: time - 0.2, event: .workerFailed(WorkerID(2), group: "jobs", why: "too many restarts")),
            PoolEventRecord(at: time - 0.2, event: .workerSpawnFailed(WorkerID(2), group: "jobs", error: "ENOENT")),
            PoolEventRecord(at: time - 0.1, event: .poolRestarting(hard: true)),
            PoolEventRecord(at: time - 0.1, event: .poolStopping(reason: "received SIGTERM")),
            PoolEventRecord(
                at: time - 0.05,
                event: .workerLog(
                    WorkerID(1), group: "jobs",
                    record: LogRecord(level: "warning", message: "disk at 91 % ✓", metadata: ["job": "42"], timestamp: time - 0.06))),
        ]
        return FlightFrame(
            snapshot: PoolSnapshot(pool: pool, groups: groups, workers: [ready, backoff, stopped], takenAt: time), events: events,
            droppedEvents: 3)
    }

    @Test("a frame reads back as it was recorded: every group, slot, counter, time (to the microsecond) and event")
    func frameRoundTrip() throws {
        let time = 1_796_000_000.5
        let frame = sampleFrame(at: time)
        let decoded = try FlightFrame.decode(frame.encoded()[...], takenAt: time, name: "flight")
        #expect(decoded.snapshot.pool.pid == 777 && decoded.snapshot.pool.restarts == frame.snapshot.pool.restarts)
        #expect(abs(decoded.snapshot.pool.startedAt - frame.snapshot.pool.startedAt) < 1e-5)
        #expect(decoded.snapshot.groups == frame.snapshot.groups)
        #expect(decoded.snapshot.workers.count == 3)
        for (got, want) in zip(decoded.snapshot.workers, frame.snapshot.workers) {
            #expect(got.id == want.id && got.group == want.group && got.pid == want.pid && got.state == want.state)
            #expect(got.generation == want.generation && got.restarts == want.restarts && got.rssBytes == want.rssBytes)
            #expect(abs(got.cpuSeconds - want.cpuSeconds) < 1e-6)
            for (a, b) in [(got.firstStartedAt, want.firstStartedAt), (got.startedAt, want.startedAt), (got.readyAt, want.readyAt),
                (got.finishedAt, want.finishedAt), (got.backoffUntil, want.backoffUntil)]
            {
                #expect((a == nil) == (b == nil) && abs((a ?? 0) - (b ?? 0)) < 1e-5, "\(String(describing: a)) \(String(describing: b))")
            }
            #expect(got.lastExit?.reason == want.lastExit?.reason && got.lastExit?.signal == want.lastExit?.signal)
            #expect(got.lastExit?.code == want.lastExit?.code && got.lastExit?.status == want.lastExit?.status)
            var activity = got.activity
            // Times kept to the microsecond.
            #expect(abs(Double(activity.currentJobSince) - Double(want.activity.currentJobSince)) < 2000)
            #expect(abs(Double(activity.lastUpdate) - Double(want.activity.lastUpdate)) < 2000)
            activity.currentJobSince = want.activity.currentJobSince
            activity.lastUpdate = want.activity.lastUpdate
            #expect(activity == want.activity)
            #expect(got.exits == want.exits && got.queueWait == want.queueWait && got.runTime == want.runTime)
        }
        #expect(decoded.droppedEvents == 3)
        #expect(decoded.events.map(\.type) == frame.events.map(\.type))
        for (got, want) in zip(decoded.events, frame.events) {
            #expect(abs(got.at - want.at) < 1e-5)
            switch (got.event, want.event) {
            case (.workerReady(let a, let g, let p, let s), .workerReady(let b, let h, let q, let t)):
                #expect(a == b && g == h && p == q && s == t)
            case (.workerLog(let a, let g, let r), .workerLog(let b, let h, let s)):
                #expect(a == b && g == h && r.level == s.level && r.message == s.message && r.metadata == s.metadata)
                #expect(abs(r.timestamp - s.timestamp) < 1e-5)
            default:
                #expect(got.event == want.event)
            }
        }
    }

    @Test("a frame cut short is an error naming the field, never a crash")
    func truncatedFrame() throws {
        let bytes = sampleFrame(at: 100).encoded()
        for length in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: ByteReader.Malformed.self) { try FlightFrame.decode(bytes[0..<length], takenAt: 100, name: "x") }
        }
    }

    func writeFrames(_ file: FlightRecordingFile, _ range: Range<Int>) {
        for second in range {
            let frame = sampleFrame(at: Double(1_000 + second))
            #expect(file.append(frame.encoded(), at: UInt64(1_000 + second) * 1_000_000_000))
        }
    }

    @Test("the ring keeps the newest frames, in order, after wrapping many times; a new run continues it")
    func ringWraps() throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let capacity = FlightRecordingFile.minimumCapacity
        let file = try FlightRecordingFile(directory: directory, pool: "flight", capacity: capacity, recordFor: .seconds(60))
        let frameSize = FlightRecordingFile.frameSize(payload: sampleFrame(at: 1_000).encoded().count)
        let fits = capacity / frameSize
        writeFrames(file, 0..<(fits * 5 + 3))
        let recording = try FlightRecording(pool: "flight", directory: directory)
        let times = recording.frames.map(\.time)
        // Everything but the frames the last wrap-around overwrote (one at most torn).
        #expect(times.count >= fits - 2 && times.count <= fits, "\(times.count) of \(fits)")
        #expect(times.last == Double(1_000 + fits * 5 + 2))
        #expect(zip(times, times.dropFirst()).allSatisfy { $1 == $0 + 1 }, "consecutive")
        #expect(try recording.frame(recording.frames.count - 1).snapshot.workers.count == 3)
        // The next run of the pool appends after the newest frame.
        let again = try FlightRecordingFile(directory: directory, pool: "flight", capacity: capacity, recordFor: .seconds(60))
        #expect(again.nextSequence == (recording.frames.last?.sequence ?? 0) + 1)
        writeFrames(again, (fits * 5 + 3)..<(fits * 5 + 5))
        try recording.reload()
        #expect(recording.frames.last?.time == Double(1_000 + fits * 5 + 4))
        #expect(recording.index(at: Double(1_000 + fits * 5 + 3) + 0.5) == recording.frames.count - 2)
    }

    @Test("a frame torn mid-write (a kill, a crash of the host) is not read; the frames before it are")
    func tornFrame() throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = try FlightRecordingFile(directory: directory, pool: "flight", capacity: 1 << 20, recordFor: .seconds(60))
        writeFrames(file, 0..<10)
        // Scribble over the middle of the newest frame, as a write cut short would leave it.
        let recording = try FlightRecording(pool: "flight", directory: directory)
        let newest = try #require(recording.frames.last)
        let handle = try #require(FileHandle(forUpdatingAtPath: "\(directory)/\(FlightRecordingFile.fileName)"))
        try handle.seek(toOffset: UInt64(FlightRecordingFile.headerSize + newest.offset + 40))
        handle.write(Data([0xFF, 0xFF, 0xFF, 0xFF]))
        try handle.close()
        try recording.reload()
        #expect(recording.frames.map(\.time) == (0..<9).map { Double(1_000 + $0) })
    }

    @Test("a pool restarted with a ring of another size keeps the old recording readable before the new one")
    func resizedRing() throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        writeFrames(try FlightRecordingFile(directory: directory, pool: "flight", capacity: 1 << 20, recordFor: .seconds(60)), 0..<5)
        writeFrames(try FlightRecordingFile(directory: directory, pool: "flight", capacity: 2 << 20, recordFor: .seconds(60)), 10..<13)
        let recording = try FlightRecording(pool: "flight", directory: directory)
        #expect(recording.frames.map(\.time) == [0, 1, 2, 3, 4, 10, 11, 12].map { Double(1_000 + $0) })
        #expect(try recording.frame(0).snapshot.pool.name == "flight")
    }

    @Test("no recording, or a file that is not one, is an error that says where and what")
    func missingOrForeign() throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(throws: FlightRecordingError.self) { try FlightRecording(pool: "flight", directory: directory) }
        try Data(repeating: 7, count: 8192).write(to: URL(fileURLWithPath: "\(directory)/\(FlightRecordingFile.fileName)"))
        do {
            _ = try FlightRecording(pool: "flight", directory: directory)
            Issue.record("a foreign file was read as a recording")
        } catch {
            #expect(error.description.contains("not a flight recording"), "\(error)")
        }
    }

    @Test("the ring's size follows recordFor and the pool's size, within its bounds")
    func capacity() {
        let small = FlightRecordingFile.capacity(recordFor: .seconds(900), groups: 1, slots: 2)
        let large = FlightRecordingFile.capacity(recordFor: .seconds(900), groups: 8, slots: 256)
        #expect(small >= FlightRecordingFile.minimumCapacity && small < large)
        // 15 minutes of 256 workers at ~80 bytes each, with a quarter to spare.
        #expect(large >= 900 * 256 * 80 && large <= 40 << 20, "\(large)")
        #expect(FlightRecordingFile.capacity(recordFor: .seconds(86_400), groups: 64, slots: 4096) == FlightRecordingFile.maximumCapacity)
    }
}
