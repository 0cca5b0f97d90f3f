import ArgumentParser

/// `pooltop` (or the binary that calls `PoolTopCLI.main`): the worker pool and its console.
struct PoolTopCommand: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
        commandName: CLIContext.shared.commandName,
        abstract: "A multi-process worker pool for Swift on Linux, and its console.",
        discussion: """
            Without a subcommand, it runs the default pool (pooltop's: the bundled demo; or --config pool.yaml) with the console in this terminal.
            Exit status: 0 on success (a pool that stopped cleanly), 1 when the pool failed or refused a command,
            2 for a usage or configuration error.
            """,
        subcommands: [
            HostCommand.self, RunCommand.self, AttachCommand.self, TopCommand.self, ListCommand.self, StatusCommand.self, ScaleCommand.self, RestartCommand.self,
            StopCommand.self, LogsCommand.self, JobCommand.self, MetricsCommand.self, ApplyCommand.self, WhyCommand.self,
            ReplayCommand.self, QueueCommand.self, EnqueueCommand.self, DeadCommand.self, FleetCommand.self,
        ],
        defaultSubcommand: HostCommand.self
        )
    }
}

/// A subcommand whose work is asynchronous; `main.swift` calls `execute()` on it.
protocol PoolTopAsyncCommand: ParsableCommand {
    func execute() async throws
}
