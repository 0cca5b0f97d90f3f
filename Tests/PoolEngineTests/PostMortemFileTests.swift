import Foundation
import Testing

@testable import PoolEngine

/// The post-mortem file: appended whole, read back past a torn line, bounded per slot and in size.
@Suite("Post-mortems on disk")
struct PostMortemFileTests {
    func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pooltop-deaths-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func death(_ worker: Int, _ index: Int, message: String = "") -> PostMortem {
        PostMortem(
            at: Double(index), worker: WorkerID(worker), group: "jobs", pid: Int32(1000 + index), generation: index,
            status: .signaled(9), reason: .signal, message: message.isEmpty ? nil : message, uptimeSeconds: 1,
            lines: [PostMortem.Line(at: Double(index), level: "info", message: "line \(index)")],
            samples: [PostMortem.Sample(at: Double(index), rssBytes: 1 << 20, cpuSeconds: 0.5)],
            job: PostMortem.Job(id: UInt64(index), runningSeconds: 0.25), backtrace: nil)
    }

    @Test("records read back in order; a torn last line (a kill mid-write) is skipped")
    func appendAndRead() throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = try PostMortemFile(directory: directory)
        for index in 0..<3 { file.append(death(1, index)) }
        let handle = try #require(FileHandle(forWritingAtPath: file.path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"at":9,"worker":1,"gro"#.utf8))
        try handle.close()
        let read = PostMortemFile.read(path: file.path)
        #expect(read == (0..<3).map { death(1, $0) })
    }

    @Test("the newest 16 of each slot are kept; past its size the file is rewritten with those")
    func bounded() throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = try PostMortemFile(directory: directory, limit: 64 * 1024)
        for index in 0..<40 {
            file.append(death(1, index))
            file.append(death(2, index))
        }
        let kept = PostMortemFile.newest(PostMortemFile.read(path: file.path))
        #expect(kept.filter { $0.worker == WorkerID(1) }.map(\.generation) == Array(24..<40))
        #expect(kept.filter { $0.worker == WorkerID(2) }.map(\.generation) == Array(24..<40))
        // Big records: the size bound rewrites the file, keeping the newest.
        let big = String(repeating: "x", count: 8 * 1024)
        for index in 40..<60 { file.append(death(3, index, message: big)) }
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int)
        #expect(size <= 64 * 1024, "rewritten under its limit (\(size) bytes)")
        let after = PostMortemFile.read(path: file.path)
        #expect(after.last == death(3, 59, message: big), "the newest survives the rewrite")
    }
}
