import ArgumentParser

/// `pooltop`: the worker pool and its console.
struct PoolTopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pooltop",
        abstract: "A multi-process worker pool for Swift on Linux, and its console.",
        discussion: """
            Without a subcommand, pooltop runs the bundled demo pool (or --config pool.yaml) with the console in this terminal.
            Exit status: 0 on success (a pool that stopped cleanly), 1 when the pool failed or refused a command,
            2 for a usage or configuration error.
            """,
        subcommands: [
            HostCommand.self, RunCommand.self, AttachCommand.self, TopCommand.self, ListCommand.self, StatusCommand.self, ScaleCommand.self, RestartCommand.self,
            StopCommand.self, LogsCommand.self, JobCommand.self, MetricsCommand.self,
        ],
        defaultSubcommand: HostCommand.self
    )
}

/// A subcommand whose work is asynchronous; `main.swift` calls `execute()` on it.
protocol PoolTopAsyncCommand: ParsableCommand {
    func execute() async throws
}
