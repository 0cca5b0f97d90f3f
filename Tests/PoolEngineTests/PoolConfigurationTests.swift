import PoolDemo
import Testing

@testable import PoolEngine

@Suite("pool.yaml: parsing, validation, and errors that name the key and line")
struct PoolConfigurationTests {
    let entryPoints = DemoPool.entryPoints

    func parseError(_ yaml: String) -> ConfigurationError? {
        do {
            _ = try PoolConfiguration.parse(yaml: yaml, file: "pool.yaml", entryPoints: entryPoints)
            return nil
        } catch {
            return error
        }
    }

    @Test("the bundled demo pool parses into its groups with every setting")
    func demoParses() throws {
        let (configuration, description) = try PoolConfiguration.parse(
            yaml: DemoPool.configuration, file: nil, entryPoints: entryPoints)
        #expect(configuration.name == "demo")
        #expect(description.groups.map(\.name) == ["jobs", "ticker", "submitter", "http", "metrics"])
        #expect(description.groups[4].listeners.map(\.description) == ["127.0.0.1:9091"])
        #expect(description.groups[3].listeners == [try Listener("127.0.0.1:8080", name: "listen0")])
        #expect(description.groups[3].jobGroups == [GroupID(1)])
        #expect(description.groups[2].jobGroups == [GroupID(1)], "jobGroups by name resolve to ids")
        #expect(description.groups[0].jobExecutor == JobExecutorConfiguration(), "job groups get an executor")
        #expect(description.groups[0].standby && !description.groups[1].standby)
        #expect(description.groups[0].restart.backoff == RestartBackoff(initial: .milliseconds(100), factor: 2, maximum: .seconds(30), resetAfter: .seconds(10)))
        #expect(description.groups[1].restart.policy == .limited(maxRestarts: 5, window: .seconds(60)))
        #expect(description.groups[1].firstWorkerID == WorkerID(5))
        #expect(description.stopTimeout == .seconds(10))
    }

    @Test("listen takes address strings and mappings; names default to listen<index>")
    func listenParses() throws {
        let yaml = """
            groups:
              - kind: reactor
                entryPoint: ticker
                listen:
                  - 127.0.0.1:8080
                  - "[::1]:8080"
                  - {address: "unix:/run/app.sock", name: app, backlog: 64}
                  - localhost:9000
            """
        let (_, description) = try PoolConfiguration.parse(yaml: yaml, entryPoints: entryPoints)
        let listeners = description.groups[0].listeners
        #expect(listeners.map(\.address) == [
            .tcp(host: "127.0.0.1", port: 8080), .tcp(host: "::1", port: 8080), .unix(path: "/run/app.sock"),
            .tcp(host: "localhost", port: 9000),
        ])
        #expect(listeners.map(\.name) == ["listen0", "listen1", "app", "listen3"])
        #expect(listeners.map(\.backlog) == [1024, 1024, 64, 1024])
        #expect(listeners.map(\.description) == ["127.0.0.1:8080", "[::1]:8080", "unix:/run/app.sock", "localhost:9000"])
    }
    @Test("standby: true is kept for an entry point's group, listeners or not, and refused for a program, with its line")
    func standby() throws {
        let yaml = "groups:\n  - {name: jobs, kind: job, entryPoint: demo-job, standby: true}\n"
        let (_, description) = try PoolConfiguration.parse(yaml: yaml, entryPoints: entryPoints)
        #expect(description.groups[0].standby)
        let program = parseError("groups:\n  - kind: service\n    command: [/bin/sleep, '60']\n    standby: true\n")
        #expect(program?.path == "groups[0].standby")
        #expect(program?.line == 4)
        #expect(program?.message.contains("program") == true)
        let reactor = parseError("groups:\n  - kind: reactor\n    entryPoint: ticker\n    listen: [127.0.0.1:8080]\n    standby: true\n")
        #expect(reactor == nil, "a group with listeners may keep a standby: \(String(describing: reactor))")
    }

    @Test("jobGroups resolve by name and by id, to later groups too")
    func jobGroupsResolve() throws {
        let yaml = """
            name: p
            groups:
              - {name: front, kind: service, entryPoint: ticker, jobGroups: [jobs, 3]}
              - {name: jobs, kind: job, entryPoint: demo-job}
              - {name: more, kind: job, entryPoint: demo-job}
            """
        let (_, description) = try PoolConfiguration.parse(yaml: yaml, entryPoints: entryPoints)
        #expect(description.groups[0].jobGroups == [GroupID(2), GroupID(3)])
        #expect(description.groups[0].jobWait == .suspend, "senders suspend unless they opt in")
        let adaptive = try PoolConfiguration.parse(
            yaml: "groups:\n  - {kind: service, entryPoint: ticker, jobWait: adaptive}\n", entryPoints: entryPoints)
        #expect(adaptive.1.groups[0].jobWait == .adaptive)
        let ordered = try PoolConfiguration.parse(
            yaml: """
                groups:
                  - {name: migrate, kind: service, entryPoint: ticker, restart: {policy: never}}
                  - {name: cache, kind: service, entryPoint: ticker}
                  - {name: api, kind: service, entryPoint: ticker, after: [{group: migrate, condition: completed}, cache]}
                """, entryPoints: entryPoints)
        #expect(
            ordered.1.groups[2].after == [
                ResolvedDependency(group: GroupID(1), condition: .completed), ResolvedDependency(group: GroupID(2), condition: .ready),
            ], "a plain name waits for ready")
        // Workers of another executable: only that binary knows its entry points (its worker
        // reports an unknown one as fatal when it starts), so this one does not refuse them.
        let elsewhere = try PoolConfiguration.parse(
            yaml: "groups:\n  - {kind: reactor, entryPoint: web, executable: /srv/app/bin/app, listen: ['127.0.0.1:8080']}\n",
            entryPoints: entryPoints)
        #expect(elsewhere.1.groups[0].entryPoint == "web")
        #expect(elsewhere.1.groups[0].runner.executable == "/srv/app/bin/app")
    }

    @Test("each bad configuration gets one error naming the key path and line", arguments: [
        ("groups:\n  - {kind: job, entryPoint: nope}\n", "groups[0].entryPoint", 2, "unknown entry point 'nope'"),
        ("groups:\n  - kind: job\n    entryPoint: demo-job\n    min: 3\n    max: 2\n", "groups[0].max", 5, "less than min"),
        ("groups:\n  - kind: job\n    entryPoint: demo-job\n    min: 0\n    max: 0\n", "groups[0].max", 5, "at least 1"),
        ("groups:\n  - {name: a, kind: job, entryPoint: demo-job, jobGroups: [b]}\n", "groups[0].jobGroups[0]", 2, "unknown group 'b'"),
        ("groups:\n  - {name: a, kind: job, entryPoint: demo-job, jobGroups: [a]}\n", "groups[0].jobGroups[0]", 2, "to itself"),
        ("groups:\n  - {name: a, kind: job, entryPoint: demo-job}\n  - {name: a, kind: job, entryPoint: demo-job}\n", "groups[1].name", 3, "duplicate group name 'a'"),
        ("name: p\ngroups: []\n", "groups", 2, "no groups"),
        ("groups:\n  - kind: job\n    entryPoint: demo-job\n    min: two\n", "groups[0].min", 4, "whole number"),
        ("groups:\n  - kind: job\n    entryPoint: demo-job\n    colour: red\n", "groups[0].colour", 4, "unknown key 'colour'"),
        ("nmae: p\ngroups: []\n", "nmae", 1, "unknown key 'nmae'"),
        ("groups:\n  - kind: reactor\n    entryPoint: ticker\n    listen: ['127.0.0.1']\n", "groups[0].listen[0]", 4, "expected host:port"),
        ("groups:\n  - kind: reactor\n    entryPoint: ticker\n    listen:\n      - ':80'\n", "groups[0].listen[0]", 5, "host is missing"),
        ("groups:\n  - kind: reactor\n    entryPoint: ticker\n    listen: ['::1:80']\n", "groups[0].listen[0]", 4, "in brackets"),
        ("groups:\n  - kind: reactor\n    entryPoint: ticker\n    listen: ['127.0.0.1:99999']\n", "groups[0].listen[0]", 4, "0...65535"),
        ("groups:\n  - kind: reactor\n    entryPoint: ticker\n    listen: ['127.0.0.1:0']\n", "groups[0].listen[0]", 4, "port 0"),
        ("groups:\n  - kind: reactor\n    entryPoint: ticker\n    listen: ['unix:app.sock']\n", "groups[0].listen[0]", 4, "absolute"),
        ("groups:\n  - kind: reactor\n    entryPoint: ticker\n    listen:\n      - {address: '127.0.0.1:80', backlog: 0}\n", "groups[0].listen[0].backlog", 5, "from 1 to 65535"),
        ("groups:\n  - kind: reactor\n    entryPoint: ticker\n    listen:\n      - {address: '127.0.0.1:80', name: 'a:b'}\n", "groups[0].listen[0].name", 5, "without ':'"),
        ("groups:\n  - kind: reactor\n    entryPoint: ticker\n    listen:\n      - {adress: '127.0.0.1:80'}\n", "groups[0].listen[0].adress", 5, "unknown key 'adress'"),
        ("groups:\n  - kind: reactor\n    entryPoint: ticker\n    listen: ['127.0.0.1:80', '127.0.0.1:80']\n", "groups[0].listen[1]", 4, "listed twice"),
        ("groups:\n  - kind: job\n    entryPoint: demo-job\n    listen: ['127.0.0.1:80']\n", "groups[0].listen", 4, "only reactor and service groups"),
        ("groups:\n  - {name: a, kind: reactor, entryPoint: ticker, listen: ['127.0.0.1:80']}\n  - {name: b, kind: reactor, entryPoint: ticker, listen: ['127.0.0.1:80']}\n", "groups[1].listen[0]", 3, "already served by group 'a'"),
        ("groups:\n  - kind: worker\n    entryPoint: demo-job\n", "groups[0].kind", 2, "unknown value 'worker'"),
        ("groups:\n  - kind: job\n    entryPoint: demo-job\n    restart: {policy: sometimes}\n", "groups[0].restart.policy", 4, "unknown value 'sometimes'"),
        ("groups:\n  - kind: job\n    entryPoint: demo-job\n    restart:\n      backoff: {initial: soon}\n", "groups[0].restart.backoff.initial", 5, "not a duration"),
        ("stopTimeout: 10\ngroups:\n  - {kind: job, entryPoint: demo-job}\n", "stopTimeout", 1, "not a duration"),
        ("groups:\n  - kind: job\n    entryPoint: demo-job\n    restart: {policy: always, maxRestarts: 3}\n", "groups[0].restart.maxRestarts", 4, "only applies"),
        ("name: ../etc\ngroups:\n  - {kind: job, entryPoint: demo-job}\n", "name", 1, "not a valid pool name"),
        ("groups:\n  - {kind: job}\n", "groups[0]", 2, "'entryPoint' (a Swift worker) or 'command' (a program) is missing"),
        ("groups:\n  - {kind: job, command: [python3, app.py]}\n", "groups[0].command", 2, "a command can only run in a service or reactor group"),
        ("groups:\n  - {kind: service, entryPoint: ticker, command: [sleep, '1']}\n", "groups[0].command", 2, "give either 'entryPoint'"),
        ("groups:\n  - {kind: service, command: []}\n", "groups[0].command", 2, "must be a list of strings"),
        ("groups:\n  - kind: service\n    entryPoint: ticker\n    ready: notify\n", "groups[0].ready", 4, "only applies to a group that runs a program"),
        ("groups:\n  - kind: service\n    command: [sleep, '9']\n    stopSignal: STOP-NOW\n", "groups[0].stopSignal", 4, "'STOP-NOW' is not a signal"),
        ("groups:\n  - kind: service\n    command: [sleep, '9']\n    ready: eventually\n", "groups[0].ready", 4, "unknown value 'eventually'"),
        ("groups:\n  - kind: service\n    command: [sleep, '9']\n    ready: {tcp: '127.0.0.1:80', http: 'http://x/'}\n", "groups[0].ready", 4, "exactly one of 'tcp', 'http' or 'exec'"),
        ("groups:\n  - kind: service\n    command: [sleep, '9']\n    ready:\n      http: 'https://x/'\n", "groups[0].ready.http", 5, "not an http:// URL"),
        ("groups:\n  - kind: service\n    command: [sleep, '9']\n    ready:\n      tcp: '127.0.0.1:80'\n      failureThreshold: 0\n", "groups[0].ready.failureThreshold", 6, "between 1 and 1000"),
        ("groups:\n  - kind: service\n    command: [sleep, '9']\n    envFile: /nonexistent/.env\n", "groups[0].envFile", 4, "/nonexistent/.env"),
        ("groups:\n  - kind: service\n    command: [sleep, '9']\n    workingDirectory: /nonexistent\n", "groups[0].workingDirectory", 4, "not a directory"),
        ("groups:\n  - kind: service\n    command: [sleep, '9']\n    user: no-such-user-here\n", "groups[0].user", 4, "no user 'no-such-user-here'"),
        ("groups:\n  - kind: service\n    command: [sleep, '9']\n    env: {A: b}\n    environment: {A: c}\n", "groups[0].env", 4, "give one"),
        ("groups:\n  - kind: reactor\n    command: [sleep, '9']\n    jobGroups: [x]\n  - {name: x, kind: job, entryPoint: demo-job}\n", "groups[0].jobGroups", 4, "a program cannot send jobs"),
        ("groups:\n  - {name: a, kind: service, entryPoint: ticker}\n  - {kind: service, entryPoint: ticker, after: [{group: a, condition: soon}]}\n", "groups[1].after[0].condition", 3, "unknown value 'soon'"),
        ("groups:\n  - {kind: service, entryPoint: ticker, after: [nope]}\n", "groups[0].after[0].group", 2, "unknown group 'nope'"),
        ("groups:\n  - {name: a, kind: service, entryPoint: ticker, after: [b]}\n  - {name: b, kind: service, entryPoint: ticker, after: [a]}\n", "groups[0].after", 2, "cycle"),
        ("groups:\n  - kind: job\n    entryPoint: demo-job\n    jobWait: busy\n", "groups[0].jobWait", 4, "'busy' is not a job wait; use 'suspend', 'adaptive', 'poll', 'receive', 'spin'"),
    ])
    func errors(yaml: String, path: String, line: Int, message: String) throws {
        let error = try #require(parseError(yaml))
        #expect(error.path == path)
        #expect(error.line == line)
        #expect(error.message.contains(message), "message was: \(error.message)")
        #expect(error.description.hasPrefix("pool.yaml:\(line): \(path)"))
    }

    @Test("a YAML syntax error names its line")
    func syntaxError() throws {
        let error = try #require(parseError("groups:\n  - kind: job\n   entryPoint: [unclosed\n"))
        #expect(error.message.hasPrefix("YAML syntax error"))
        #expect(error.line != nil)
    }

    @Test("settings may nest 32 levels; deeper is refused at the key path where it goes too deep")
    func settingsDepth() throws {
        func yaml(levels: Int) -> String {
            "groups:\n  - entryPoint: demo-job\n    kind: job\n    settings: "
                + String(repeating: "{a: ", count: levels) + "x" + String(repeating: "}", count: levels) + "\n"
        }
        #expect(parseError(yaml(levels: 32)) == nil)
        let error = try #require(parseError(yaml(levels: 34)))
        #expect(error.path == "groups[0].settings" + String(repeating: ".a", count: 33), "\(error)")
        #expect(error.message == "nests deeper than 32 levels")
    }

    @Test("the Swift API refuses the same mistakes: max zero, as in reference testStartWithMaxZero")
    func apiValidation() throws {
        let pool = WorkerPool(name: "api", entryPoints: entryPoints)
        try pool.describeGroup(WorkerGroup(entryPoint: "demo-job", kind: .job, minWorkers: 0, maxWorkers: 0))
        #expect(throws: ConfigurationError(path: "groups[0].max", message: "max workers must be at least 1")) {
            try pool.validate()
        }
    }

    @Test("group names are derived from the entry point when empty")
    func derivedNames() throws {
        let description = try PoolValidator.validate(
            name: "p", stopTimeout: .seconds(1),
            groups: [WorkerGroup(entryPoint: "ticker", kind: .service)], entryPoints: nil)
        #expect(description.groups[0].name == "ticker")
    }
}

@Suite("pool.yaml: job, scaling and recycle keys")
struct PoolConfigurationJobKeysTests {
    @Test("jobs, pickup, scaling and recycle parse into the group")
    func parse() throws {
        let yaml = """
            groups:
              - name: jobs
                kind: job
                entryPoint: demo-job
                pickup: round-robin
                jobs: {maxConcurrent: 4, maxWeight: 10, maxQueued: 8}
                scaling: {onDemand: false, shrinkAfterIdle: never}
                recycle: {maxJobs: 1000, maxMemory: 512MiB, memorySamples: 5, maxLifetime: 1h, maxIdle: 10m, jitter: 0.2}
            """
        let (_, description) = try PoolConfiguration.parse(yaml: yaml, entryPoints: PoolDemo.DemoPool.entryPoints)
        let group = description.groups[0]
        #expect(group.strategies["pickup"]?.name == "round-robin")
        #expect(group.jobExecutor == JobExecutorConfiguration(maxConcurrentJobs: 4, maxConcurrentWeight: 10, maxQueuedJobs: 8))
        #expect(group.scaling == ScalingPolicy.manual)
        #expect(group.recycle == RecyclePolicy(maxJobs: 1000, maxMemoryBytes: 512 * 1_048_576, memorySamples: 5, maxLifetime: .seconds(3600), maxIdle: .seconds(600), jitter: 0.2))
    }

    @Test("bad values name their key", arguments: [
        ("pickup: fastest", "groups[0].pickup", "unknown value 'fastest'"),
        ("jobs: {maxConcurrent: 0}", "groups[0].jobs.maxConcurrent", "from 1 to 100000"),
        ("recycle: {maxMemory: lots}", "groups[0].recycle.maxMemory", "not a size"),
        ("recycle: {jitter: 2}", "groups[0].recycle.jitter", "0 to under 1"),
        ("scaling: {onDemand: maybe}", "groups[0].scaling.onDemand", "true or false"),
        ("standby: sometimes", "groups[0].standby", "true or false"),
    ])
    func errors(line: String, path: String, message: String) throws {
        let yaml = "groups:\n  - kind: job\n    entryPoint: demo-job\n    \(line)\n"
        do {
            _ = try PoolConfiguration.parse(yaml: yaml, file: "pool.yaml", entryPoints: PoolDemo.DemoPool.entryPoints)
            Issue.record("expected an error for \(line)")
        } catch {
            #expect(error.path == path, "\(error)")
            #expect(error.message.contains(message), "\(error)")
            #expect(error.line == 4)
        }
    }
}

/// A pool of one job group with these pool-wide keys, from `/etc/pool/pool.yaml`.
func parsePoolKeys(_ lines: String) throws(ConfigurationError) -> PoolConfiguration {
    try PoolConfiguration.parse(
        yaml: "name: keys\n\(lines)\ngroups:\n  - {name: jobs, kind: job, entryPoint: demo-job}\n", file: "/etc/pool/pool.yaml",
        entryPoints: DemoPool.entryPoints
    ).configuration
}

@Suite("pool.yaml: the flight recorder's span, the log history and the log file")
struct RecordingAndLogConfigurationTests {
    @Test("recordFor: 15 minutes by default, a duration, or off")
    func recordFor() throws {
        #expect(try parsePoolKeys("").recordFor == .seconds(900))
        #expect(try parsePoolKeys("recordFor: 1h").recordFor == .seconds(3600))
        #expect(try parsePoolKeys("recordFor: off").recordFor == nil)
        // What the Swift API gets from the file.
        let pool = try parsePoolKeys("recordFor: 2m").makePool(entryPoints: DemoPool.entryPoints, logger: .init(label: "test"))
        #expect(pool.configuration.recordFor == .seconds(120))
    }

    @Test("logs: defaults, a relative log file beside the configuration, sizes and counts")
    func logs() throws {
        let plain = try parsePoolKeys("")
        #expect(plain.logHistory == 1000 && plain.logFile == nil)
        let file = try parsePoolKeys("logFile: log/pool.log\nlogMaxSize: 1MiB\nlogKeep: 2\nlogHistory: 50")
        #expect(file.logFile == LogFileSettings(path: "/etc/pool/log/pool.log", maxSize: 1 << 20, keep: 2))
        #expect(file.logHistory == 50)
        #expect(try parsePoolKeys("logFile: /var/log/p.log").logFile == LogFileSettings(path: "/var/log/p.log"))
    }

    @Test("a relative path reads the same whether the file was named relative (run) or absolute (apply)")
    func relativeFile() throws {
        let yaml = "name: keys\nlogFile: logs/pool.log\ngroups:\n  - {name: jobs, kind: job, entryPoint: demo-job}\n"
        let relative = try PoolConfiguration.parse(yaml: yaml, file: "pool.yaml", entryPoints: DemoPool.entryPoints).configuration
        let absolute = try PoolConfiguration.parse(
            yaml: yaml, file: "\(Posix.currentDirectory())/pool.yaml", entryPoints: DemoPool.entryPoints
        ).configuration
        #expect(relative.logFile == absolute.logFile && relative.logFile?.path == "\(Posix.currentDirectory())/logs/pool.log")
    }

    @Test("out of range, not a value of its kind, or rotation without a file: an error naming the key and its line", arguments: [
        ("recordFor: 5s", "recordFor"), ("recordFor: 25h", "recordFor"), ("recordFor: soon", "recordFor"),
        ("logHistory: 5", "logHistory"), ("logFile: a.log\nlogMaxSize: 1KiB", "logMaxSize"), ("logFile: a.log\nlogKeep: 101", "logKeep"),
        ("logKeep: 3", "logKeep"),
    ])
    func errors(yaml: String, key: String) throws {
        do throws(ConfigurationError) {
            _ = try parsePoolKeys(yaml)
            Issue.record("\(yaml) was accepted")
        } catch {
            #expect(error.path == key && error.line != nil, "\(error)")
            #expect(error.description.hasPrefix("/etc/pool/pool.yaml:"), "\(error)")
        }
    }
}
