import ArgumentParser
#if PostgresQueue
import PoolQueue
#endif
import PoolEngine

#if canImport(Glibc)
import Glibc
#endif

/// Every `pooltop` command for your own binary, with your own entry points: the console
/// (hosting or attaching), `run`, `attach`, `top`, `list`, `status`, `scale`, `restart`,
/// `stop`, `logs`, `job` and `metrics`, exactly as `pooltop` has them.
///
/// ```swift
/// // Sources/MyApp/main.swift
/// import PoolEngine
/// import PoolTopCLI
///
/// TaskThreads.install()   // first: an idle watcher then sleeps (does nothing in a worker)
/// var entryPoints = EntryPoints()
/// entryPoints.register("api") { API() }
/// entryPoints.register("mailer") { Mailer() }
/// await PoolTopCLI.main(entryPoints: entryPoints, defaultConfiguration: .file("pool.yaml"))
/// ```
/// The same binary is the watcher and every worker: a spawned worker runs its entry point and
/// exits inside `main`; only the watcher goes on to parse the command line.
public enum PoolTopCLI {
    /// The pool a command runs when it is given no `--config`.
    public struct DefaultConfiguration: Sendable {
        enum Source: Sendable {
            case text(yaml: String, name: String)
            case file(String)
        }

        let source: Source

        /// A pool description compiled into the binary; `name` stands for it in errors (`<demo pool>`).
        public static func yaml(_ yaml: String, name: String) -> DefaultConfiguration {
            DefaultConfiguration(source: .text(yaml: yaml, name: name))
        }

        /// A file, relative to the working directory (`pool.yaml`).
        public static func file(_ path: String) -> DefaultConfiguration {
            DefaultConfiguration(source: .file(path))
        }
    }

    /// Runs the command line (or, in a spawned worker, its entry point) and exits the process
    /// with the documented status: 0 success, 1 a failed pool or a refused command, 2 a usage
    /// or configuration error.
    /// - Parameters:
    ///   - commandName: the name help and errors use; the executable's own name by default.
    ///
    /// Call ``TaskThreads/install(threadCount:)`` first, on the line before: the watcher's tasks
    /// then run on threads of pooltop's, and an idle watcher is not woken every second by
    /// libdispatch. (This function cannot do it itself: an `await` in `main` already needs an
    /// executor.)
    ///
    /// It runs on its caller's executor, the main thread when called from `main`, so that a
    /// worker starts there without libdispatch starting a thread first (decision 0020).
    nonisolated(nonsending) public static func main(
        entryPoints: EntryPoints, defaultConfiguration: DefaultConfiguration? = nil, commandName: String? = nil
    ) async -> Never {
        #if PostgresQueue
        // Built with the queue: every PoolTopCLI binary can run a postgres-queue group.
        var entryPoints = entryPoints
        entryPoints.registerPostgresQueue()
        #endif
        await WorkerProcess.runIfWorker(entryPoints: entryPoints)
        CLIContext.set(
            CLIContext(
                entryPoints: entryPoints, defaultConfiguration: defaultConfiguration,
                commandName: commandName ?? CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") }
                    ?? "pooltop"))
        // Dispatch by hand: from top-level code, Swift 6.3 resolves `main(nil)` and an existential's
        // `run()` to ArgumentParser's synchronous overloads, which cannot run an async command.
        do {
            var command = try PoolTopCommand.parseAsRoot()
            if let asyncCommand = command as? any PoolTopAsyncCommand {
                try await asyncCommand.execute()
            } else {
                try command.run()
            }
            exit(0)
        } catch {
            // Usage errors exit 2, as documented (ArgumentParser's own code is 64).
            if PoolTopCommand.exitCode(for: error) == .validationFailure {
                printError(PoolTopCommand.fullMessage(for: error))
                exit(2)
            }
            PoolTopCommand.exit(withError: error)
        }
    }
}

/// What `PoolTopCLI.main` was given, for the commands ArgumentParser builds.
struct CLIContext: Sendable {
    var entryPoints: EntryPoints
    var defaultConfiguration: PoolTopCLI.DefaultConfiguration?
    var commandName: String

    private static let current = Mutex<CLIContext?>(nil)

    static func set(_ context: CLIContext) { current.withLock { $0 = context } }

    /// Set by `PoolTopCLI.main` before any command runs.
    static var shared: CLIContext {
        current.withLock { $0 } ?? CLIContext(entryPoints: EntryPoints(), defaultConfiguration: nil, commandName: "pooltop")
    }

    /// Loads `--config`, or the default configuration; errors name file, line and key.
    func load(_ config: String?) throws -> (configuration: PoolConfiguration, description: PoolDescription) {
        if let config { return try PoolConfiguration.load(file: config, entryPoints: entryPoints) }
        switch defaultConfiguration?.source {
        case .text(let yaml, let name)?:
            return try PoolConfiguration.parse(yaml: yaml, file: name, entryPoints: entryPoints)
        case .file(let path)?:
            return try PoolConfiguration.load(file: path, entryPoints: entryPoints)
        case nil:
            throw ValidationError("no pool description: pass --config FILE")
        }
    }
}
