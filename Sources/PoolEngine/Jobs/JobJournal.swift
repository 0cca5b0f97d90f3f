/// A fault drill's record of every job a worker starts: one line per job, the head of its
/// payload, appended before the job counts as started (before its running-jobs entry is
/// written). `make chaos` checks against it that every job that ended `worker-lost` had
/// started. Off unless a group's environment sets ``variable``; it costs a `write` per job.
final class JobJournal: Sendable {
    /// The environment variable naming the journal file (give it in the group's `environment`).
    static let variable = "POOLTOP_JOB_JOURNAL"

    private let fd: Int32

    /// The journal named in this process's environment, if any.
    static func fromEnvironment() throws -> JobJournal? {
        guard let path = Posix.getenv(variable), !path.isEmpty else { return nil }
        return JobJournal(fd: try Posix.openForAppending(path))
    }

    private init(fd: Int32) { self.fd = fd }

    deinit { Posix.close(fd) }

    /// Appends the job's payload head (64 bytes at most, line breaks as spaces) as one line.
    func record(_ job: Job) {
        var line = job.payload.prefix(64).map { $0 == UInt8(ascii: "\n") ? UInt8(ascii: " ") : $0 }
        line.append(UInt8(ascii: "\n"))
        // One write of a short line with O_APPEND: lines from the workers never interleave.
        _ = try? line.withUnsafeBytes { try Posix.write(fd, $0) }
    }
}
