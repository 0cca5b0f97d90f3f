import Foundation

/// A pool's post-mortems, kept in `deaths.jsonl` in its state directory: one JSON line per death,
/// appended with one write, so a watcher killed at any moment leaves every earlier line whole
/// (a torn last line is skipped when read). At most ``keptPerSlot`` per slot, and the file
/// stays under ``maximumSize``: once past it, it is rewritten with only those.
public final class PostMortemFile {
    static let keptPerSlot = 16
    static let maximumSize = 8 << 20
    static let fileName = "deaths.jsonl"

    let path: String
    private var fd: Int32
    private var size: Int
    /// The size past which the file is rewritten (``maximumSize``; tests make it small).
    private let limit: Int

    init(directory: String, limit: Int = PostMortemFile.maximumSize) throws {
        path = "\(directory)/\(Self.fileName)"
        self.limit = limit
        fd = try Posix.openForAppending(path)
        size = (try? Posix.fileSize(fd)) ?? 0
    }

    deinit { Posix.close(fd) }

    func append(_ record: PostMortem) {
        guard var line = try? JSONValue.encodeLine(record) else { return }
        line += "\n"
        let bytes = Array(line.utf8)
        // One write: a line is in the file whole or not at all, whatever happens to us next.
        _ = try? bytes.withUnsafeBytes { try Posix.write(fd, $0) }  // try?: a full disk loses this record, not the pool
        size += bytes.count
        if size > limit { compact() }
    }

    /// Rewrites the file with the newest ``keptPerSlot`` records of each slot (and, should that
    /// still be too big, the newest that fit in half the maximum).
    private func compact() {
        var kept = Self.newest(Self.read(path: path))
        var bytes = kept.compactMap { try? JSONValue.encodeLine($0) }.map { Array(($0 + "\n").utf8) }
        while bytes.reduce(0, { $0 + $1.count }) > limit / 2, !bytes.isEmpty {
            bytes.removeFirst()
            kept.removeFirst()
        }
        let temporary = path + ".tmp"
        Posix.removeFile(temporary)
        guard let out = try? Posix.openForAppending(temporary) else { return }
        for line in bytes { _ = try? line.withUnsafeBytes { try Posix.write(out, $0) } }  // try?: as append
        Posix.close(out)
        guard rename(temporary, path) == 0, let reopened = try? Posix.openForAppending(path) else { return }
        Posix.close(fd)
        fd = reopened
        size = bytes.reduce(0) { $0 + $1.count }
    }

    /// The newest ``keptPerSlot`` records of each slot, oldest first.
    static func newest(_ records: [PostMortem]) -> [PostMortem] {
        var perSlot: [WorkerID: Int] = [:]
        var kept: [PostMortem] = []
        for record in records.reversed() {
            perSlot[record.worker, default: 0] += 1
            if perSlot[record.worker]! <= keptPerSlot { kept.append(record) }
        }
        return kept.reversed()
    }

    /// Every whole record of a file, oldest first; a line that does not decode (torn by a kill)
    /// is skipped.
    static func read(path: String) -> [PostMortem] {
        guard case .bytes(let bytes)? = try? Posix.readRegularFile(path, limit: maximumSize * 2, timeoutNanoseconds: 2_000_000_000)
        else { return [] }
        let decoder = JSONDecoder()
        return bytes.split(separator: UInt8(ascii: "\n")).compactMap { line in
            try? decoder.decode(PostMortem.self, from: Data(line))
        }
    }

    /// The post-mortems of pool `pool` kept on this host, oldest first (the pool may be stopped).
    public static func records(pool: String) -> [PostMortem] {
        newest(read(path: "\(StateDirectory.path(pool: pool))/\(fileName)"))
    }
}
