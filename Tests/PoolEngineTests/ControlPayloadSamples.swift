@testable import PoolEngine

/// Control payloads whose every field holds a value other than its default, so a field the
/// codec drops or misplaces changes the decoded value.
enum ControlPayloadSamples {
    static var kitchenSink: WorkerBootstrap {
        var jobs = GroupDescription(
            id: GroupID(3), name: "jobs-ü", kind: .job, entryPoint: "demo-job", minWorkers: 2, maxWorkers: 9,
            firstWorkerID: WorkerID(300), slots: 12, jobGroups: [GroupID(1), GroupID(4_000_000)],
            runner: WorkerRunner(executable: "/opt/app/worker", environment: ["A": "1", "B": "two words", "": "empty key"]),
            restart: .limited(
                maxRestarts: 7, window: .milliseconds(12_345),
                backoff: RestartBackoff(initial: .microseconds(3), factor: 1.75, maximum: .seconds(90), resetAfter: .seconds(-1))),
            stopTimeout: Duration(secondsComponent: 4, attosecondsComponent: 123_456_789_012_345_678), startTimeout: .seconds(61),
            onUncaughtError: .restart,
            strategies: ["pickup": StrategyDescriptor(name: "least-jobs", parameters: ["x": "1"]), "other": StrategyDescriptor(name: "y")],
            jobExecutor: JobExecutorConfiguration(maxConcurrentJobs: 3, maxConcurrentWeight: 11, maxQueuedJobs: 1000),
            scaling: ScalingPolicy(onDemand: false, shrinkAfterIdle: .seconds(5)),
            recycle: RecyclePolicy(
                maxJobs: 10, maxMemoryBytes: UInt64.max, memorySamples: 4, maxLifetime: .seconds(3600), maxIdle: .milliseconds(1),
                jitter: 0.25))
        var tcp = Listener(address: .tcp(host: "::1", port: 65535), name: "api", backlog: 17)
        tcp.exposed = true
        tcp.shared = true
        jobs.listeners = [tcp, Listener(address: .unix(path: "/run/app.sock"), name: "local", backlog: 1)]
        jobs.jobWait = JobWaitPolicy.allCases.first { $0 != .suspend }!  // Safe: the policy has more than one case.
        jobs.after = [ResolvedDependency(group: GroupID(1), condition: .completed)]
        jobs.hangTimeout = .seconds(2)
        jobs.environmentFileDigest = 0xDEAD_BEEF_0000_0001
        jobs.settings = [
            "url": .scalar("postgres://x"), "queues": .list([.scalar("a"), .map(["deep": .list([])])]), "empty": .map([:]),
        ]
        jobs.retired = true
        jobs.standby = true

        var program = GroupDescription(
            id: GroupID(4), name: "api", kind: .reactor, entryPoint: "", minWorkers: 0, maxWorkers: 1, firstWorkerID: WorkerID(312),
            slots: 1, jobGroups: [], runner: .sameExecutable, restart: .never, stopTimeout: .zero, startTimeout: .seconds(1),
            onUncaughtError: .stopPool, strategies: [:], jobExecutor: nil, scaling: .manual, recycle: nil)
        program.program = ExternalProgram(
            ["gunicorn", "app:app", ""], environmentFile: "/etc/app.env", workingDirectory: "/srv",
            readiness: .probe(
                ReadinessProbe(
                    .http(host: "127.0.0.1", port: 8000, path: "/health"), interval: .milliseconds(250), timeout: .seconds(2),
                    failureThreshold: 5, initialDelay: .seconds(1))),
            stopSignal: 2, watchdog: .seconds(30), user: "nobody", group: "nogroup")
        var exec = program
        exec.id = GroupID(5)
        exec.name = "exec-probe"
        exec.program?.readiness = .probe(ReadinessProbe(.exec(["/bin/true", "--x"])))
        var tcpProbe = program
        tcpProbe.id = GroupID(6)
        tcpProbe.name = "tcp-probe"
        tcpProbe.program?.readiness = .probe(ReadinessProbe(.tcp(host: "localhost", port: 1)))
        var notify = program
        notify.id = GroupID(7)
        notify.name = "notify"
        notify.program?.readiness = .notify

        let pool = PoolDescription(
            name: "kitchen sink", stopTimeout: .seconds(7), groups: [jobs, program, exec, tcpProbe, notify],
            reserve: PoolReserve(groups: 1, slots: 2, runningJobBytes: 3))
        return WorkerBootstrap(
            workerID: WorkerID(301), generation: -2, pool: pool, watcherPID: 123_456, logLevel: "trace",
            sharedMemoryName: "pooltop-0-kitchen", runtimeDirectory: "/tmp/pooltop-0/kitchen",
            slotEnvironment: ["POOLTOP_WORKER_ID": "301", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"])
    }
}
