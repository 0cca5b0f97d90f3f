import Foundation
import Testing

@testable import PoolEngine

/// The log file: whole lines, rotated by size, the oldest dropped.
@Suite("Log file rotation")
struct LogFileTests {
    @Test("lines are written whole with their time and level; past the size the file rotates, keeping logKeep")
    func rotates() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pooltop-logfile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/pool.log"
        let file = try LogFile(LogFileSettings(path: path, maxSize: 4096, keep: 2))
        for index in 0..<200 {
            file.write(
                PoolEventRecord(
                    at: 1_796_094_720.25,
                    event: .workerLog(WorkerID(1), group: "jobs", record: LogRecord(level: "warning", message: "line \(index)", timestamp: 0))))
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(names == ["pool.log", "pool.log.1", "pool.log.2"], "two rotated files kept, the oldest dropped")
        var lines: [String] = []
        for name in ["pool.log.2", "pool.log.1", "pool.log"] {
            let text = try String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)
            #expect(text.utf8.count <= 4096 && text.hasSuffix("\n"), "\(name) within its size, whole lines")
            lines += text.split(separator: "\n").map(String.init)
        }
        #expect(lines.first?.hasPrefix("2026-12-01T03:12:00.250Z warning worker 1 (jobs) warning: line ") == true, "\(lines.first ?? "")")
        #expect(lines.last?.hasSuffix("line 199") == true)
        // Consecutive: nothing lost between the files that are kept.
        let numbers = lines.compactMap { Int($0.split(separator: " ").last ?? "") }
        #expect(numbers == Array((numbers.first ?? 0)...199))
    }
}
