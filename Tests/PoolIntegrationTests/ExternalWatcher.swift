import Glibc
import Testing

@testable import PoolEngine

/// `pooltop run` as a separate process, with its stderr in a file: for what only a real
/// watcher process shows (signals, its own death, exit statuses).
final class ExternalWatcher {
    let pid: pid_t
    let logPath: String
    /// The `PT_TEST_TAG` it and its workers carry, for the orphan check.
    let tag: String
    private let pidfd: Int32
    private var status: TerminationStatus?

    /// Starts `pooltop <arguments>` tagged with `tag`; `ownProcessGroup` puts it in a group of its
    /// own, like a shell's foreground job.
    /// `prefix` runs before it (for example `prlimit --nofile=48:48`), and execs it in turn.
    init(
        arguments: [String], tag: String, directory: String, ownProcessGroup: Bool = true, prefix: [String] = [],
        executable: String = TestSupport.pooltopExecutable
    ) throws {
        logPath = "\(directory)/watcher.log"
        self.tag = tag
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        var environment = Posix.environment().filter { !$0.hasPrefix("PT_TEST_TAG=") }
        environment.append("PT_TEST_TAG=\(tag)")
        environment.append("POOLTOP_TEST_DIR=\(directory)")
        pid = try Posix.spawn(
            path: "/bin/sh",
            arguments: ["-c", "exec \(prefix.joined(separator: " ")) '\(executable)' \(quoted) 2>'\(logPath)'"],
            environment: environment, inherited: [], newProcessGroup: ownProcessGroup)
        pidfd = try Posix.pidfdOpen(pid)
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            _ = try? Posix.pollReadable(pidfd, timeoutMilliseconds: 5000)
            _ = try? Posix.reap(pidfd: pidfd)
        }
        Posix.close(pidfd)
    }

    var log: String { TestSupport.lines(logPath.components.directory, logPath.components.file).joined(separator: "\n") }

    func signal(_ signal: Int32) { kill(pid, signal) }

    /// Stops it with SIGTERM, as an operator would, and expects exit 0 with no process of its tag left.
    func stopExpectingCleanExit(sourceLocation: SourceLocation = #_sourceLocation) async {
        signal(SIGTERM)
        #expect(waitForExit() == .exited(0), "\(log)", sourceLocation: sourceLocation)
        await TestSupport.expectNoOrphans(tag, sourceLocation: sourceLocation)
    }

    /// Waits (failsafe-bounded) for the watcher to exit and reaps it.
    func waitForExit(timeout: Duration = .seconds(30)) -> TerminationStatus? {
        if let status { return status }
        let milliseconds = Int32(timeout.components.seconds * 1000)
        guard (try? Posix.pollReadable(pidfd, timeoutMilliseconds: milliseconds)) == true else { return nil }
        status = try? Posix.reap(pidfd: pidfd)
        return status
    }

    /// Waits until the log contains `text` (failsafe-bounded).
    func waitForLog(_ text: String, count: Int = 1, timeout: Duration = .seconds(15)) async -> Bool {
        await TestSupport.eventually(timeout: timeout) { self.log.components(separatedBy: text).count - 1 >= count }
    }
}

extension String {
    fileprivate var components: (directory: String, file: String) {
        let slash = lastIndex(of: "/")!
        return (String(self[..<slash]), String(self[index(after: slash)...]))
    }

    func components(separatedBy separator: String) -> [Substring] {
        var parts: [Substring] = []
        var rest = self[...]
        while let range = rest.range(of: separator) {
            parts.append(rest[..<range.lowerBound])
            rest = rest[range.upperBound...]
        }
        parts.append(rest)
        return parts
    }
}

extension Substring {
    func range(of needle: String) -> Range<Substring.Index>? {
        guard !needle.isEmpty else { return nil }
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(needle) { return index..<self.index(index, offsetBy: needle.count) }
            index = self.index(after: index)
        }
        return nil
    }
}

/// The outcome of one command-line run.
struct CommandOutput {
    var status: TerminationStatus?
    var stdout: String
    var stderr: String
}

extension TestSupport {
    /// Runs `pooltop <arguments>` to completion (failsafe 30 s) with its output captured.
    static func pooltop(_ arguments: [String], directory: String) throws -> CommandOutput {
        try shell("'\(pooltopExecutable)' " + arguments.map { "'\($0)'" }.joined(separator: " "), directory: directory)
    }

    /// ``shell(_:directory:stdin:)`` waiting on a thread of its own, for a command that talks to
    /// a pool in this process: its control socket answers on Swift concurrency's threads.
    static func shellOffPool(_ command: String, directory: String, stdin: String? = nil) async throws -> CommandOutput {
        let result = try await blocking { Result { try shell(command, directory: directory, stdin: stdin) } }
        return try result.get()
    }

    /// Runs a shell command line to completion (failsafe 30 s) with its output captured.
    static func shell(_ command: String, directory: String, stdin: String? = nil) throws -> CommandOutput {
        let n = Int.random(in: 0..<1_000_000_000)
        let out = "\(directory)/cmd-\(n).out"
        let err = "\(directory)/cmd-\(n).err"
        var line = "\(command) >'\(out)' 2>'\(err)'"
        if let stdin {
            let input = "\(directory)/cmd-\(n).in"
            write(input, stdin)
            line += " <'\(input)'"
        } else {
            line += " </dev/null"
        }
        let pid = try Posix.spawn(path: "/bin/sh", arguments: ["-c", line], environment: Posix.environment(), inherited: [])
        let pidfd = try Posix.pidfdOpen(pid)
        defer { Posix.close(pidfd) }
        var status: TerminationStatus?
        if (try? Posix.pollReadable(pidfd, timeoutMilliseconds: 30_000)) == true {
            status = try Posix.reap(pidfd: pidfd)
        } else {
            kill(pid, SIGKILL)
            _ = try? Posix.pollReadable(pidfd, timeoutMilliseconds: 5_000)
            _ = try? Posix.reap(pidfd: pidfd)
        }
        let read = { (path: String) in String(decoding: (try? Posix.readFile(path)) ?? [], as: UTF8.self) }
        return CommandOutput(status: status, stdout: read(out), stderr: read(err))
    }
}
