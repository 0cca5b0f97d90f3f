import ArgumentParser
import Logging
import PoolEngine

#if canImport(Glibc)
import Glibc
#endif

/// `pooltop run`: the watcher without a console, for servers, systemd and CI.
struct RunCommand: PoolTopAsyncCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pool headless (no console); logs go to stderr.",
        discussion: """
            Signals: SIGTERM, SIGINT and SIGHUP stop the pool gracefully (a second one kills what is left);
            SIGUSR1 restarts every worker (hard); SIGUSR2 replaces each worker as it finishes (soft).
            """
    )

    @Option(name: .long, help: "The pool description (YAML). Without it, the binary's default pool (pooltop's: the demo).")
    var config: String?

    @Option(name: .long, help: "The pool's name (overrides the file's 'name').")
    var name: String?

    @Option(name: .long, help: "Hold this PID file under an exclusive lock while running.")
    var pidFile: String?

    @Option(name: .long, help: "Watcher log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Flag(name: .long, help: "Check the configuration, print the groups and exit without starting anything.")
    var check = false

    func execute() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level '\(logLevel)' is not a level; use trace, debug, info, notice, warning, error or critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "pooltop")
        let entryPoints = CLIContext.shared.entryPoints

        let parsed: (configuration: PoolConfiguration, description: PoolDescription)
        do {
            parsed = try CLIContext.shared.load(config)
            if let name { try PoolConfiguration.validatePoolName(name) }
        } catch {
            printError("\(CLIContext.shared.commandName): configuration error: \(error)")
            throw ExitCode(2)
        }
        var configuration = parsed.configuration
        if let pidFile { configuration.pidFile = pidFile }
        if check {
            for group in parsed.description.groups {
                print(
                    "\(group.name): kind \(group.kind.rawValue), entry point \(group.entryPoint), workers \(group.minWorkers)...\(group.maxWorkers), ids \(group.firstWorkerID)...\(group.firstWorkerID.rawValue + group.maxWorkers - 1)"
                )
            }
            return
        }

        let pool = try configuration.makePool(entryPoints: entryPoints, nameOverride: name, logger: logger)
        do {
            try await pool.run()
        } catch let error as PoolStartError {
            printError("\(CLIContext.shared.commandName): \(error)")
            throw ExitCode(1)
        } catch let error as PoolFailure {
            printError("\(CLIContext.shared.commandName): pool '\(pool.name)' failed: \(error)")
            throw ExitCode(1)
        } catch let error as ConfigurationError {
            printError("\(CLIContext.shared.commandName): configuration error: \(error)")
            throw ExitCode(2)
        }
    }
}

/// Writes one line to stderr (a C global that Swift 6 will not touch directly).
func printError(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
