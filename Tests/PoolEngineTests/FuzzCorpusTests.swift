import Foundation
import PoolEngine
import PoolFuzzing
import Testing

/// Every input of the fuzz harnesses' seed corpus, and every input a `make fuzz` run once failed
/// on, goes through its harness on each `make test`: a crash found once stays fixed.
@Suite("Fuzz corpus and regressions")
struct FuzzCorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func inputs(_ kind: String, _ harness: FuzzHarness) -> [URL] {
        let folder = root.appendingPathComponent(kind).appendingPathComponent(harness.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.sorted().map { folder.appendingPathComponent($0) }
    }

    @Test("each harness has a seed corpus, and every seed and saved finding runs clean", arguments: FuzzHarness.allCases)
    func replay(harness: FuzzHarness) throws {
        let seeds = Self.inputs("Corpus", harness)
        #expect(seeds.count >= 3, "Tests/Fuzz/Corpus/\(harness.rawValue) holds \(seeds.count) seeds")
        for input in seeds + Self.inputs("Regressions", harness) {
            let bytes = try [UInt8](Data(contentsOf: input))
            #expect(throws: Never.self, "\(input.lastPathComponent)") { try harness.run(bytes) }
        }
    }
}

@Suite("Control-frame fuzz seeds")
struct ControlFrameSeedTests {
    // The seeds are written by hand in the payload encoding; a seed that no longer reads (a
    // field added since) would only exercise the error path, so each must read as a message.
    @Test("every seed that picks a message kind reads as that message", arguments: FuzzCorpusTests.inputs("Corpus", .controlFrame))
    func seedReads(input: URL) throws {
        let bytes = try [UInt8](Data(contentsOf: input))
        guard let mode = bytes.first, mode < 0x80 else { return }
        let kind = ControlCodec.Kind.allCases[Int(mode) % ControlCodec.Kind.allCases.count]
        let frame = ControlFrame(kind: kind.rawValue, payload: Array(bytes.dropFirst()))
        let read: Bool
        switch kind {
        case .bootstrap, .stop: read = (try? ControlCodec.decodeWatcherMessage(frame)) != nil
        default: read = (try? ControlCodec.decodeWorkerMessage(frame)) != nil
        }
        #expect(read, "\(input.lastPathComponent) does not read as \(kind)")
    }
}
