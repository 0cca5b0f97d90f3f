import ArgumentParser
import Glibc
import PoolDemo
import PoolEngine

// The same executable is the watcher and every worker: a spawned worker runs its entry
// point here and exits; only the watcher goes on to parse the command line.
await WorkerProcess.runIfWorker(entryPoints: DemoPool.entryPoints)

// Dispatch by hand: from top-level code, Swift 6.3 resolves `main(nil)` and an existential's
// `run()` to ArgumentParser's synchronous overloads, which cannot run an async command.
do {
    var command = try PoolTopCommand.parseAsRoot()
    if let asyncCommand = command as? any PoolTopAsyncCommand {
        try await asyncCommand.execute()
    } else {
        try command.run()
    }
} catch {
    // Usage errors exit 2, as documented (ArgumentParser's own code is 64).
    if PoolTopCommand.exitCode(for: error) == .validationFailure {
        printError(PoolTopCommand.fullMessage(for: error))
        exit(2)
    }
    PoolTopCommand.exit(withError: error)
}
