import Glibc
import Testing

@testable import PoolConsole
@testable import PoolEngine

/// The flight recorder with a real watcher: killed with SIGKILL, it leaves a recording whose
/// last frame is its last second, which `top --once --at` prints and `pooltop replay` plays.
@Suite("Flight recorder and replay with real processes", .serialized)
struct RecordingProcessTests {
    @Test("replay of a pool whose watcher was SIGKILLed shows its last recorded second, its events, and moves in time under tmux")
    func replayAfterWatcherKill() async throws {
        let name = TestSupport.uniqueName("replay")
        // The SIGKILLed watcher leaves its segment and runtime directory (its next run would take
        // them over); the replay reads only the recording, so they go when the test ends.
        defer { RuntimeDirectory.removeStale(pool: name) }
        let directory = TestSupport.makeDirectory(name)
        TestSupport.write("\(directory)/pool.yaml", """
            name: \(name)
            recordFor: 1m
            groups:
              - {name: jobs, kind: job, entryPoint: demo-job, min: 2}
            """)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", "\(directory)/pool.yaml"], tag: name, directory: directory)
        #expect(await watcher.waitForLog("ready", count: 2), "\(watcher.log)")
        let pooltop = TestSupport.pooltopExecutable
        let job = try await TestSupport.shellOffPool("'\(pooltop)' job '\(name)' jobs 'echo recorded'", directory: directory)
        #expect(job.status == .exited(0), "\(job)")
        // A worker's death, to find among the recorded events.
        let victim = try #require(TestSupport.taggedWorkers(name).first { $0 != watcher.pid })
        kill(victim, SIGKILL)
        #expect(await watcher.waitForLog("ready", count: 3), "a replacement: \(watcher.log)")
        let status = try await TestSupport.shellOffPool("'\(pooltop)' status '\(name)' --json", directory: directory)
        let pids = (try JSONValue.parse(status.stdout)["workers"]?.array ?? []).compactMap { $0["pid"]?.integer }
        #expect(pids.count == 2 && !pids.contains(Int(victim)), "\(status.stdout)")
        // Two frames at least after the replacement, then the watcher dies without a word.
        try await Task.sleep(for: .milliseconds(2_200))
        watcher.signal(SIGKILL)
        let killedAt = ReplayTime.wallClock
        #expect(watcher.waitForExit() == .signaled(SIGKILL))
        await TestSupport.expectNoOrphans(name, leavesRuntime: true)

        // The last frame is the watcher's last second: both workers ready, the job counted.
        let top = try await TestSupport.shellOffPool("'\(pooltop)' top --once '\(name)' --at=0s --width 160 --height 30", directory: directory)
        #expect(top.status == .exited(0), "\(top)")
        let lines = top.stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.first)
        #expect(header.contains("REPLAY of "), "\(top.stdout)")
        let shown = (0...2).map { ReplayTime.format(killedAt - Double($0)) }
        #expect(shown.contains { header.contains("REPLAY of \($0)") }, "the last frame is within the second before the kill (\(shown)): \(header)")
        for pid in pids { #expect(lines.contains { $0.contains(" \(pid) ") && $0.contains("ready") }, "worker pid \(pid): \(top.stdout)") }
        #expect(top.stdout.contains("GROUP") && top.stdout.contains("/1/0/0"), "the job is counted: \(top.stdout)")
        #expect(top.stdout.contains("pid \(victim)"), "the killed worker's events: \(top.stdout)")

        // The console on the recording: plainly a replay, moving a second at a time, changing nothing.
        let tmux = Tmux(socket: name, directory: directory)
        defer { tmux.kill() }
        try tmux.startPooltop("replay \(name)", tag: "\(name)-replay")
        #expect(await tmux.waitFor("REPLAY of "), "\(tmux.screen())")
        let frames = try #require(FlightRecording(pool: name).frames.count as Int?)
        #expect(await tmux.waitFor("frame \(frames) of \(frames)"), "\(tmux.screen())")
        try tmux.keys("Left")
        #expect(await tmux.waitFor("frame \(frames - 1) of \(frames)"), "\(tmux.screen())")
        try tmux.keys("PageUp")
        #expect(await tmux.waitFor("frame 1 of \(frames)"), "a minute back is the recording's start: \(tmux.screen())")
        try tmux.keys("g")
        try tmux.keys("1h Enter")
        #expect(await tmux.waitFor("the recording starts at"), "\(tmux.screen())")
        try tmux.keys("G")
        #expect(await tmux.waitFor("frame \(frames) of \(frames)"), "\(tmux.screen())")
        try tmux.keys("+")
        #expect(await tmux.waitFor("replay: a recording cannot be changed"), "\(tmux.screen())")
        try tmux.keys("q")
        await TestSupport.expectNoOrphans("\(name)-replay")
    }

    @Test("an idle pool's recorder dozes (no frame while nothing changes); a job between workers wakes it to record that moment")
    func dozeAndBell() async throws {
        let name = TestSupport.uniqueName("doze")
        let directory = TestSupport.makeDirectory(name)
        // No resource sampling: nothing but a worker's bell can make a dozing recorder write.
        let pool = WorkerPool(
            name: name,
            configuration: WorkerPool.Configuration(
                stopTimeout: .seconds(5), handlesSignals: false, sampleInterval: nil, recordFor: .seconds(60)))
        let runner = TestSupport.runner(directory: directory, tag: name)
        try pool.describeGroup(WorkerGroup(entryPoint: "demo-job", kind: .job, minWorkers: 1, name: "jobs", runner: runner))
        try pool.describeGroup(
            WorkerGroup(entryPoint: "trigger-sender", kind: .service, minWorkers: 1, name: "sender", jobGroups: ["jobs"], runner: runner))
        let running = RunningPool(pool)
        await pool.awaitStart()
        let segment = try PoolStateReader(pool: name).segment
        func dozing() -> Bool { segment.load(SharedLayout.Header.recorderDozing) == 1 }
        func frames() -> [FlightRecording.Entry] { (try? FlightRecording(pool: name).frames) ?? [] }
        func processed(_ entry: FlightRecording.Entry) -> UInt64 {
            guard let recording = try? FlightRecording(pool: name), let index = recording.frames.firstIndex(of: entry),
                let frame = try? recording.frame(index)
            else { return 0 }
            return frame.snapshot.workers.filter { $0.group == "jobs" }.reduce(0) { $0 + $1.activity.jobsProcessed }
        }

        #expect(await TestSupport.eventually(timeout: .seconds(20)) { dozing() }, "the recorder never dozed")
        let asleep = frames()
        try await Task.sleep(for: .seconds(2))
        #expect(frames() == asleep, "frames were written while nothing changed")

        let triggeredAt = ReplayTime.wallClock
        TestSupport.write("\(directory)/trigger", "")
        #expect(await TestSupport.eventually { TestSupport.lines(directory, "trigger-result") == ["triggered"] }, "\(TestSupport.lines(directory, "trigger-result"))")
        // The watcher heard nothing of this job: only the bell can have woken the recorder.
        #expect(
            await TestSupport.eventually { frames().contains { $0.time >= triggeredAt && $0.length > 0 && processed($0) == 1 } },
            "no frame shows the job: \(frames().suffix(3))")
        #expect(await TestSupport.eventually(timeout: .seconds(20)) { dozing() }, "the recorder did not doze again")

        pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(name)
    }

    @Test("replay and top --at name what is wrong: no recording, an unreadable time")
    func replayErrors() async throws {
        let directory = TestSupport.makeDirectory(TestSupport.uniqueName("replay-errors"))
        let none = try TestSupport.pooltop(["replay", "no-such-pool-recorded"], directory: directory)
        #expect(none.status == .exited(1) && none.stderr.contains("pool 'no-such-pool-recorded' has no flight recording in"), "\(none)")
        let topNone = try TestSupport.pooltop(["top", "--once", "no-such-pool-recorded", "--at", "5m"], directory: directory)
        #expect(topNone.status == .exited(1) && topNone.stderr.contains("has no flight recording"), "\(topNone)")
        let noName = try TestSupport.pooltop(["top", "--once", "--at", "5m"], directory: directory)
        #expect(noName.status == .exited(2) && noName.stderr.contains("--at needs the pool's name"), "\(noName)")
    }
}
