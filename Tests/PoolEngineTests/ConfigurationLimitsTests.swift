import Glibc
import PoolDemo
import Testing

@testable import PoolEngine

@Suite("Configuration limits: every value out of range is an error naming the key, none traps")
struct ConfigurationLimitsTests {
    let entryPoints = DemoPool.entryPoints

    /// One job group with `line` added to it, parsed; the error when it fails.
    func groupError(_ line: String) -> ConfigurationError? {
        let yaml = "name: t\ngroups:\n  - name: jobs\n    kind: job\n    entryPoint: demo-job\n    \(line)\n"
        do {
            _ = try PoolConfiguration.parse(yaml: yaml, file: "pool.yaml", entryPoints: entryPoints)
            return nil
        } catch {
            return error
        }
    }

    /// Validates `group` through the Swift API's path (the validator `run()` uses).
    func apiError(_ group: WorkerGroup, stopTimeout: Duration = .seconds(10)) -> ConfigurationError? {
        do {
            _ = try PoolValidator.validate(name: "t", stopTimeout: stopTimeout, groups: [group], entryPoints: nil)
            return nil
        } catch {
            return error
        }
    }

    @Test(
        "the values that used to trap are errors naming the file, line and key",
        arguments: [
            ("stopTimeout: 99999999999h", "groups[0].stopTimeout"),
            ("recycle: {maxMemory: 1e30GB}", "groups[0].recycle.maxMemory"),
            ("recycle: {maxMemory: infGB}", "groups[0].recycle.maxMemory"),
            ("recycle: {maxMemory: nanMB}", "groups[0].recycle.maxMemory"),
            ("recycle: {maxLifetime: 1e300s}", "groups[0].recycle.maxLifetime"),
            ("recycle: {maxIdle: infs}", "groups[0].recycle.maxIdle"),
            ("restart: {backoff: {max: 9999999999999h}}", "groups[0].restart.backoff.max"),
            ("restart: {backoff: {factor: .nan}}", "groups[0].restart.backoff.factor"),
            ("restart: {backoff: {factor: .inf}}", "groups[0].restart.backoff.factor"),
            ("restart: {policy: limited, maxRestarts: 3, window: 1e20h}", "groups[0].restart.window"),
            ("recycle: {jitter: .nan}", "groups[0].recycle.jitter"),
            ("max: 99999999999999999999", "groups[0].max"),
            ("max: 5000", "groups[0].max"),
            ("jobs: {maxConcurrent: 1000000000}", "groups[0].jobs.maxConcurrent"),
            ("jobs: {maxQueued: -1}", "groups[0].jobs.maxQueued"),
            ("scaling: {shrinkAfterIdle: 100000h}", "groups[0].scaling.shrinkAfterIdle"),
            ("startTimeout: 0", "groups[0].startTimeout"),
        ])
    func trapsAreErrors(line: String, path: String) throws {
        let error = try #require(groupError(line), "\(line) was accepted")
        #expect(error.path == path)
        #expect(error.line == 6)
        #expect(error.description.hasPrefix("pool.yaml:6: \(path): "))
    }

    @Test("a value at each maximum is accepted; the next one up is refused")
    func maximaAreInclusive() {
        #expect(groupError("stopTimeout: 24h") == nil)
        #expect(groupError("stopTimeout: 86401s")?.message == "must be at most 24h (got 86401s)")
        #expect(groupError("startTimeout: 24h") == nil)
        #expect(groupError("recycle: {maxMemory: 16TiB}") == nil)
        #expect(groupError("recycle: {maxMemory: 17TiB}")?.path == "groups[0].recycle.maxMemory")
        #expect(groupError("recycle: {memorySamples: 3600}") == nil)
        #expect(groupError("recycle: {memorySamples: 3601}")?.path == "groups[0].recycle.memorySamples")
        #expect(groupError("restart: {backoff: {factor: 1000, max: 24h}}") == nil)
        #expect(groupError("restart: {backoff: {factor: 1000.5}}")?.path == "groups[0].restart.backoff.factor")
        #expect(groupError("jobs: {maxConcurrent: 100000, maxQueued: 1000000}") == nil)
        #expect(groupError("jobs: {maxQueued: 1000001}")?.path == "groups[0].jobs.maxQueued")
        #expect(groupError("max: 1024") == nil)
        #expect(groupError("max: 1025")?.message == "must be at most 1024 workers (got 1025)")
    }

    @Test("the Swift API refuses the same values with a typed error, never a trap")
    func swiftAPIBoundaries() {
        let forever = Duration.seconds(Int64.max)
        var group = WorkerGroup(entryPoint: "e", kind: .job)
        #expect(apiError(group, stopTimeout: forever)?.path == "stopTimeout")
        #expect(apiError(group, stopTimeout: .seconds(-1))?.path == "stopTimeout")

        group.stopTimeout = forever
        #expect(apiError(group)?.path == "groups[0].stopTimeout")
        group.stopTimeout = nil
        group.startTimeout = forever
        #expect(apiError(group)?.path == "groups[0].startTimeout")
        group.startTimeout = .seconds(1)

        group.restart = .always(backoff: RestartBackoff(initial: .zero, factor: 2, maximum: forever, resetAfter: .seconds(1)))
        #expect(apiError(group)?.path == "groups[0].restart.backoff.max")
        group.restart = .always(backoff: RestartBackoff(factor: .nan))
        #expect(apiError(group)?.path == "groups[0].restart.backoff.factor")
        group.restart = .always(backoff: RestartBackoff(resetAfter: forever))
        #expect(apiError(group)?.path == "groups[0].restart.backoff.resetAfter")
        group.restart = .limited(maxRestarts: Int.max, window: .seconds(1))
        #expect(apiError(group)?.path == "groups[0].restart.maxRestarts")
        group.restart = .limited(maxRestarts: 3, window: forever)
        #expect(apiError(group)?.path == "groups[0].restart.window")
        group.restart = .always()

        group.recycle = RecyclePolicy(maxMemoryBytes: .max)
        #expect(apiError(group)?.path == "groups[0].recycle.maxMemory")
        group.recycle = RecyclePolicy(maxJobs: 0)
        #expect(apiError(group)?.path == "groups[0].recycle.maxJobs")
        group.recycle = RecyclePolicy(memorySamples: Int.max)
        #expect(apiError(group)?.path == "groups[0].recycle.memorySamples")
        group.recycle = RecyclePolicy(maxLifetime: forever)
        #expect(apiError(group)?.path == "groups[0].recycle.maxLifetime")
        group.recycle = RecyclePolicy(maxIdle: .zero)
        #expect(apiError(group)?.path == "groups[0].recycle.maxIdle")
        group.recycle = RecyclePolicy(jitter: .infinity)
        #expect(apiError(group)?.path == "groups[0].recycle.jitter")
        group.recycle = nil

        group.scaling = ScalingPolicy(shrinkAfterIdle: forever)
        #expect(apiError(group)?.path == "groups[0].scaling.shrinkAfterIdle")
        group.scaling = .byRequest

        group.jobExecutor = JobExecutorConfiguration(maxConcurrentJobs: Int.max)
        #expect(apiError(group)?.path == "groups[0].jobs.maxConcurrent")
        group.jobExecutor = JobExecutorConfiguration(maxConcurrentWeight: Int.max)
        #expect(apiError(group)?.path == "groups[0].jobs.maxWeight")
        group.jobExecutor = nil

        group.maxWorkers = Int.max
        #expect(apiError(group)?.path == "groups[0].max")
        group.maxWorkers = 0
        group.minWorkers = 2000
        #expect(apiError(group)?.path == "groups[0].min")
        group.minWorkers = 1
        #expect(apiError(group) == nil)
    }

    @Test("the whole pool holds at most 4096 slots")
    func poolSlots() {
        let groups = (0..<5).map { WorkerGroup(entryPoint: "e", kind: .service, minWorkers: 1, maxWorkers: 1000, name: "g\($0)") }
        do {
            _ = try PoolValidator.validate(name: "t", stopTimeout: .seconds(1), groups: groups, entryPoints: nil)
            Issue.record("5000 slots were accepted")
        } catch {
            #expect(error.path == "groups[4].max")
            #expect(error.message.contains("5000 worker slots"))
        }
    }

    @Test("durations and instants saturate instead of trapping")
    func saturation() {
        #expect(Duration.seconds(Int64.max).nanoseconds == Int64.max)
        #expect(Duration.seconds(Int64.min).nanoseconds == Int64.min)
        #expect(Duration.seconds(3).nanoseconds == 3_000_000_000)
        let now = PoolInstant(nanoseconds: 1_000)
        #expect((now + .seconds(Int64.max)).nanoseconds == 1_000 + UInt64(Int64.max))
        #expect((PoolInstant(nanoseconds: .max - 5) + .seconds(1)).nanoseconds == UInt64.max)
        #expect((now + .seconds(-5)).nanoseconds == 0)
        #expect(PoolInstant(nanoseconds: .max).duration(since: PoolInstant(nanoseconds: 0)) == .nanoseconds(Int64.max))
        #expect(Duration.saturating(seconds: .infinity) == .nanoseconds(Int64.max))
        #expect(Duration.saturating(seconds: .nan) == .zero)
        #expect(Duration.saturating(seconds: 1.5) == .milliseconds(1500))
        let backoff = RestartBackoff(initial: .seconds(1), factor: 1000, maximum: .seconds(Int64.max))
        #expect(backoff.delay(afterRapidExits: 60, isBootFailure: false) == .nanoseconds(Int64.max))
    }

    @Test("the duration parser tells malformed text from text too long to hold")
    func durationParser() {
        #expect(DurationParser.classify("250ms") == .duration(.milliseconds(250)))
        #expect(DurationParser.classify("1e300s") == .tooLong)
        #expect(DurationParser.classify("99999999999h") == .tooLong)
        #expect(DurationParser.classify("infs") == .invalid)
        #expect(DurationParser.classify("nanms") == .invalid)
        #expect(DurationParser.classify("0x10s") == .invalid)
        #expect(DurationParser.classify("-1s") == .invalid)
        #expect(DurationParser.format(.seconds(-90)) == "-90s")
    }

    @Test("only a regular file of at most 1 MiB is read as a configuration")
    func configurationFile() throws {
        func loadError(_ path: String) -> String? {
            do {
                _ = try PoolConfiguration.load(file: path, entryPoints: entryPoints)
                return nil
            } catch {
                return error.description
            }
        }
        #expect(loadError("/dev/zero") == "cannot read /dev/zero: it is a character device, not a regular file")
        #expect(loadError("/dev/urandom")?.contains("character device") == true)
        #expect(loadError("/tmp") == "cannot read /tmp: it is a directory, not a regular file")
        #expect(loadError("/nonexistent/pool.yaml")?.contains("No such file") == true)

        var template = Array("/tmp/pooltop-config-XXXXXX".utf8CString)
        let directory = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        let fifo = "\(directory)/pool.fifo"
        let big = "\(directory)/big.yaml"
        defer {
            Posix.removeFile(fifo)
            Posix.removeFile(big)
            Posix.removeDirectory(directory)
        }
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(loadError(fifo) == "cannot read \(fifo): it is a FIFO, not a regular file")

        let fd = try Posix.openForAppending(big)
        let line = [UInt8]("# a comment line that fills the file up\n".utf8)
        for _ in 0..<(PoolConfiguration.maximumFileSize / line.count + 1) {
            _ = try line.withUnsafeBytes { try Posix.write(fd, $0) }
        }
        Posix.close(fd)
        #expect(loadError(big)?.contains("a configuration file may have at most 1048576 (1 MiB)") == true)
    }
}
