import Glibc
import Testing

@testable import PoolEngine

/// `pooltop run` as a separate process, with its stderr in a file: for what only a real
/// watcher process shows (signals, its own death, exit statuses).
final class ExternalWatcher {
    let pid: pid_t
    let logPath: String
    private let pidfd: Int32
    private var status: TerminationStatus?

    /// Starts `pooltop <arguments>` tagged with `tag`; `ownProcessGroup` puts it in a group of its
    /// own, like a shell's foreground job.
    init(arguments: [String], tag: String, directory: String, ownProcessGroup: Bool = true) throws {
        logPath = "\(directory)/watcher.log"
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        var environment = Posix.environment().filter { !$0.hasPrefix("PT_TEST_TAG=") }
        environment.append("PT_TEST_TAG=\(tag)")
        environment.append("POOLTOP_TEST_DIR=\(directory)")
        pid = try Posix.spawn(
            path: "/bin/sh", arguments: ["-c", "exec '\(TestSupport.pooltopExecutable)' \(quoted) 2>'\(logPath)'"],
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
