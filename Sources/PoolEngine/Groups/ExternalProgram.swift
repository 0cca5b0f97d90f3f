/// A program in any language run as a group's workers instead of a Swift entry point
/// (`command:` in `pool.yaml`): the way process-compose, supervisord and systemd run programs.
///
/// The watcher spawns it through its own executable in a hidden trampoline mode, which sets
/// `LISTEN_PID` to the program's own pid, changes directory, drops privileges and `exec`s it:
/// reactors get their listeners the systemd way (`LISTEN_FDS`, `LISTEN_FDNAMES`). Its stdout
/// and stderr become the worker's log lines; it is stopped by ``stopSignal``.
///
/// Only service and reactor groups may run a program: jobs need a Swift ``JobHandler``.
/// ```swift
/// var api = WorkerGroup(entryPoint: "", kind: .reactor, minWorkers: 2, name: "api",
///                       listeners: [try Listener("127.0.0.1:8000")])
/// api.program = ExternalProgram(["gunicorn", "app:app"], readiness: .notify)
/// ```
public struct ExternalProgram: Hashable, Sendable, Codable {
    /// The program and its arguments; the first is looked up in `PATH` unless it has a `/`.
    public var arguments: [String]
    /// A file of `KEY=VALUE` lines read at each spawn, below the group's own `environment`.
    public var environmentFile: String?
    /// Where the program runs; nil means the watcher's directory.
    public var workingDirectory: String?
    /// When a worker counts as ready.
    public var readiness: Readiness
    /// The signal that asks the program to stop (SIGKILL follows at the stop timeout).
    public var stopSignal: Int32
    /// With `WATCHDOG_USEC` set for the program: a worker whose last `WATCHDOG=1` is older is killed.
    public var watchdog: Duration?
    /// The user the program runs as (the watcher must be root); nil keeps the watcher's.
    public var user: String?
    /// The group the program runs as; nil means the user's own group (or the watcher's).
    public var group: String?

    public init(
        _ arguments: [String], environmentFile: String? = nil, workingDirectory: String? = nil,
        readiness: Readiness = .started, stopSignal: Int32 = 15 /* SIGTERM */, watchdog: Duration? = nil,
        user: String? = nil, group: String? = nil
    ) {
        self.arguments = arguments
        self.environmentFile = environmentFile
        self.workingDirectory = workingDirectory
        self.readiness = readiness
        self.stopSignal = stopSignal
        self.watchdog = watchdog
        self.user = user
        self.group = group
    }

    /// The command line as one string, for status and the console.
    public var commandLine: String {
        arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    }
}

/// When a program worker counts as ready (`ready:` in `pool.yaml`).
public enum Readiness: Hashable, Sendable, Codable {
    /// As soon as the program runs (its `exec` succeeded), like systemd's `Type=exec`.
    case started
    /// When it sends `READY=1` on `NOTIFY_SOCKET` (sd_notify(3)), like systemd's `Type=notify`.
    case notify
    /// When a probe first succeeds; after that, `failureThreshold` failures in a row restart it.
    case probe(ReadinessProbe)
}

/// A readiness probe, with process-compose's knobs.
public struct ReadinessProbe: Hashable, Sendable, Codable {
    public enum Check: Hashable, Sendable, Codable {
        /// A TCP connection is accepted.
        case tcp(host: String, port: Int)
        /// `GET path` answers 2xx or 3xx.
        case http(host: String, port: Int, path: String)
        /// The command exits 0 (run directly, not by a shell).
        case exec([String])
    }

    public var check: Check
    /// Time between probes.
    public var interval: Duration
    /// How long one probe may take.
    public var timeout: Duration
    /// Failures in a row, once ready, after which the worker is restarted.
    public var failureThreshold: Int
    /// How long after the start the first probe runs.
    public var initialDelay: Duration

    public init(
        _ check: Check, interval: Duration = .seconds(1), timeout: Duration = .seconds(1), failureThreshold: Int = 3,
        initialDelay: Duration = .zero
    ) {
        self.check = check
        self.interval = interval
        self.timeout = timeout
        self.failureThreshold = failureThreshold
        self.initialDelay = initialDelay
    }
}
