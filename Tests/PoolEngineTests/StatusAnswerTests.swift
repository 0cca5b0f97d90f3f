import FoundationEssentials
import Testing

@testable import PoolEngine

/// The `status` answer read back by the CLI: 64-bit integers (job ids, counters) come back exact.
@Suite("Control: the status answer")
struct StatusAnswerTests {
    @Test("a status with integers past 2^53 reads back exact from the answer's text; through a JSONValue they round")
    func largeIntegersReadBackExact() throws {
        var snapshot = FlightRecordingTests().sampleFrame(at: 1_764_900_000).snapshot
        snapshot.workers[0].activity.currentJobID = UInt64.max - 1
        snapshot.workers[0].activity.jobsAccepted = (1 << 62) + 1
        // The answer as the watcher writes it.
        let answer = ControlCommands.statusAnswer(["ok": .bool(true)], status: try JSONValue.encodeLine(snapshot))
        let read = try PoolSnapshot.fromStatusAnswer(answer)
        #expect(read.workers[0].activity.currentJobID == UInt64.max - 1)
        #expect(read.workers[0].activity.jobsAccepted == (1 << 62) + 1)
        #expect(read.workers.map(\.id) == snapshot.workers.map(\.id))
        // `status --json` prints the status's own text: the id is there digit for digit.
        let text = try #require(PoolSnapshot.statusText(ofAnswer: answer))
        #expect(text.contains("\(UInt64.max - 1)"))
        #expect(try JSONValue.parse(String(text))["workers"]?.array?.count == snapshot.workers.count)
        #expect(PoolSnapshot.statusText(ofAnswer: #"{"ok":true}"#) == nil)
        // What the CLI did before (a JSONValue, whose numbers are Doubles, written out again):
        // the id rounds past UInt64.max, and Foundation calls the text invalid.
        let status = try #require(try JSONValue.parse(answer)["status"])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(PoolSnapshot.self, from: Data(status.serialized.utf8)) }
    }
}
