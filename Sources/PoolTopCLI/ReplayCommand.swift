import ArgumentParser
import PoolConsole
import PoolEngine

/// `pooltop replay NAME [--at WHEN]`: the console on a pool's flight recording.
struct ReplayCommand: PoolTopAsyncCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Open the console on a pool's flight recording: what it looked like, second by second, up to the last 15 minutes.",
        discussion: """
            Works on a running pool and on one that has stopped or whose watcher was killed. Every view of the live console is there, on the recorded frame: ←/→ step a second, PgUp/PgDn a minute, g jumps to a time, G to the newest frame (read again). Nothing can be changed.
            WHEN is -5m (that long ago), 2026-12-01T03:12:00 (local time, or with Z or +01:00) or 03:12:00 (today); without --at, the newest frame.
            """)

    @Argument(help: "The pool's name.") var name: String
    @Option(name: .long, help: "The moment to open at (-5m, 03:12:00, 2026-12-01T03:12:00).") var at: String?
    @Option(name: .long, help: "Theme: default, monochrome, or a theme file's name.") var theme: String?

    func execute() async throws {
        let (recording, time) = try openRecording(name, at: at)
        try await runDetachedConsole(ReplaySource(recording: recording, at: time), readOnly: true, theme: theme)
    }
}

/// A pool's recording and the moment `--at` names (nil: the newest frame); a missing
/// recording or an unreadable time exits with an error that says which and why.
func openRecording(_ pool: String, at: String?) throws -> (FlightRecording, Double?) {
    let recording: FlightRecording
    do {
        recording = try FlightRecording(pool: pool)
    } catch {
        printError("\(CLIContext.shared.commandName): \(error)")
        throw ExitCode(1)
    }
    guard let at else { return (recording, nil) }
    switch ReplayTime.parse(at, now: ReplayTime.wallClock) {
    case .success(let time):
        if let first = recording.frames.first, let last = recording.frames.last, time < first.time - 1 || time > last.time + 2 {
            printError(
                "\(CLIContext.shared.commandName): note: the recording of '\(pool)' covers \(ReplayTime.format(first.time)) to \(ReplayTime.format(last.time)); showing the nearest frame")
        }
        return (recording, time)
    case .failure(let error):
        printError("\(CLIContext.shared.commandName): --at: \(error)")
        throw ExitCode(2)
    }
}
