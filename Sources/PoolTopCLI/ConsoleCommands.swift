import ArgumentParser
import Logging
import PoolConsole
import PoolEngine
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Loads `--config` (or the binary's default pool); a bad file exits 2 with one error naming file, line and key.
func loadConfiguration(_ config: String?, name: String?) throws -> PoolConfiguration {
    do {
        let parsed = try CLIContext.shared.load(config)
        if let name { try PoolConfiguration.validatePoolName(name) }
        return parsed.configuration
    } catch {
        printError("\(CLIContext.shared.commandName): configuration error: \(error)")
        throw ExitCode(2)
    }
}

/// `pooltop [--config pool.yaml] [--name NAME]`: the console hosting the pool in this process.
struct HostCommand: PoolTopAsyncCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Run a pool (the demo pool without --config) with the console in this terminal.",
        discussion: """
            The watcher runs in this process; quitting (q) asks, then stops the pool gracefully while the screen shows the progress.
            Workers' output goes to workers.log in the pool's runtime directory while the console runs.
            """)

    @Option(name: .long, help: "The pool description (YAML). Without it, the binary's default pool (pooltop's: the demo).") var config: String?
    @Option(name: .long, help: "The pool's name (overrides the file's 'name').") var name: String?
    @Option(name: .long, help: "Theme: default, monochrome, or a theme file's name.") var theme: String?
    @Flag(name: .long, help: "Disable every action (scale, restart, kill, jobs).") var readOnly = false

    func execute() async throws {
        // The screen is the console's: log records reach it as events, not on stderr.
        LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
        var configuration = try loadConfiguration(config, name: name)
        configuration.workerOutputFile = "workers.log"
        let pool = try configuration.makePool(
            entryPoints: CLIContext.shared.entryPoints, nameOverride: name, logger: Logger(label: "pooltop"))
        // Set once run() has returned: a pool that could not start (a port in use, say) must end
        // the console and show why, not leave it waiting for a pool that will never appear.
        let ended = Atomic<Bool>(false)
        let running = Task { () -> (any Error)? in
            defer { ended.store(true, ordering: .releasing) }
            do {
                try await pool.run()
                return nil
            } catch {
                return error
            }
        }
        let source = HostedSource(pool: pool)
        let themes = ThemeLibrary.load()
        let readOnly = self.readOnly
        let theme = self.theme
        let queues = queueBrowser(pool: pool.name)
        try await DedicatedThread.run(name: "pooltop-ui") {
            let terminal = CursesTerminal()
            ConsoleApp(
                source: source, terminal: terminal, readOnly: readOnly, themes: themes, theme: theme, queues: queues,
                shouldStop: { ended.load(ordering: .acquiring) }
            ).run()
        }
        await queues?.close()
        // The console ends once the pool has stopped, or when its terminal went away: stop the pool
        // (again, harmlessly) and wait for it, so nothing outlives pooltop.
        pool.stop()
        if let error = await running.value {
            printError("\(CLIContext.shared.commandName): pool '\(pool.name)' failed: \(error)")
            if config == nil, CLIContext.shared.commandName == "pooltop", let start = error as? PoolStartError, start.code == .listener {
                printError("\(CLIContext.shared.commandName): the demo pool serves http on 127.0.0.1:8080 and metrics on 127.0.0.1:9091; free the port, or run a pool of your own with --config pool.yaml")
            }
            throw ExitCode(1)
        }
    }
}

/// `pooltop attach NAME [--read-only]`.
struct AttachCommand: PoolTopAsyncCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Open the console on a pool running elsewhere; quitting detaches and never affects the pool.")

    @Argument(help: "The pool's name.") var name: String
    @Option(name: .long, help: "Theme: default, monochrome, or a theme file's name.") var theme: String?
    @Flag(name: .long, help: "Disable every action (scale, restart, kill, jobs).") var readOnly = false

    func execute() async throws {
        guard RuntimeDirectory.isRunning(pool: name) else {
            let running = RuntimeDirectory.poolNames().filter { RuntimeDirectory.isRunning(pool: $0) }
            printError("\(CLIContext.shared.commandName): no pool named '\(name)' is running; \(running.isEmpty ? "no pool is running" : "running pools: \(running.joined(separator: ", "))")")
            throw ExitCode(1)
        }
        try await runDetachedConsole(AttachedSource(pool: name), readOnly: readOnly, theme: theme, queues: queueBrowser(pool: name))
    }
}

/// The console on a source that does not host the pool (attached, or a replay), on a thread of
/// its own, until the operator quits; SIGTERM or a closed terminal (SIGHUP) end it cleanly,
/// and the pool never notices.
func runDetachedConsole(
    _ source: any ConsoleSource, readOnly: Bool, theme: String?, queues: (any QueueBrowser)? = nil
) async throws {
    let themes = ThemeLibrary.load()
    let signals = try SignalFlag()
    defer { signals.restore() }
    try await DedicatedThread.run(name: "pooltop-ui") {
        let terminal = CursesTerminal()
        ConsoleApp(
            source: source, terminal: terminal, readOnly: readOnly, themes: themes, theme: theme, queues: queues,
            shouldStop: { signals.isRaised }
        ).run()
    }
    await queues?.close()
}

/// `pooltop top --once [NAME] [--at WHEN]`: one frame as plain text, like `top -b`.
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Print one console frame of a running pool, or of its flight recording with --at, as plain text (for scripts and bug reports).")

    @Argument(help: "The pool's name (the only running pool when left out).") var name: String?
    @Flag(name: .long, help: "Print one frame and exit (the only mode for now).") var once = false
    @Option(name: .long, help: "Columns of the frame.") var width: Int = 120
    @Option(name: .long, help: "Rows of the frame.") var height: Int = 40
    @Option(name: .long, help: "A recorded moment instead of now: -5m, 03:12:00 or 2026-12-01T03:12:00 (the pool may be stopped).")
    var at: String?

    func validate() throws {
        if width < 20 || height < 5 { throw ValidationError("--width must be at least 20 and --height at least 5") }
        if at != nil && name == nil { throw ValidationError("--at needs the pool's name") }
    }

    func run() throws {
        if let name, let at {
            try printRecorded(name, at: at)
            return
        }
        let running = RuntimeDirectory.poolNames().filter { RuntimeDirectory.isRunning(pool: $0) }
        guard let pool = name ?? (running.count == 1 ? running[0] : nil) else {
            printError("\(CLIContext.shared.commandName): name the pool; \(running.isEmpty ? "no pool is running" : "running pools: \(running.joined(separator: ", "))")")
            throw ExitCode(running.isEmpty ? 1 : 2)
        }
        guard let snapshot = try? PoolSnapshot.read(pool: pool) else {
            printError("\(CLIContext.shared.commandName): no pool named '\(pool)' is running; \(running.isEmpty ? "no pool is running" : "running pools: \(running.joined(separator: ", "))")")
            throw ExitCode(1)
        }
        var state = ConsoleState(readOnly: true)
        state.focus = .workers
        state.selectedWorker = -1
        var trends = ConsoleTrends()
        trends.update(snapshot)
        let frame = ConsoleView.render(
            snapshot: snapshot, events: [], state: state, trends: trends, poolName: pool, isHosting: false, width: width,
            height: height)
        print(frame.text)
    }

    /// The recorded frame at `at`, drawn as the replay console draws it (events included).
    private func printRecorded(_ pool: String, at: String) throws {
        let (recording, time) = try openRecording(pool, at: at)
        let source = ReplaySource(recording: recording, at: time)
        guard let frame = source.currentFrame() else {
            printError("\(CLIContext.shared.commandName): \(source.frameProblem ?? "the frame cannot be read")")
            throw ExitCode(1)
        }
        var state = ConsoleState(readOnly: true)
        state.isReplay = true
        state.focus = .workers
        state.selectedWorker = -1
        var trends = ConsoleTrends()
        for snapshot in source.trendFrames() { trends.update(snapshot) }
        let screen = ConsoleView.render(
            snapshot: frame.snapshot, events: source.recentEvents(), state: state, trends: trends, poolName: pool, isHosting: false,
            width: width, height: height, banner: source.banner)
        print(screen.text)
    }
}
