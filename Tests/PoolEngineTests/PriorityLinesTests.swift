import Testing

@testable import PoolEngine

/// The job worker's queue: highest priority first, then arrival order, through the compaction
/// of long lines and removals in the middle.
@Suite("Priority lines (a job worker's queue)")
struct PriorityLinesTests {
    @Test("highest priority first, then in arrival order; priorities come and go")
    func order() {
        var lines = PriorityLines<String>()
        for (name, priority) in [("a0", 0), ("b5", 5), ("c0", 0), ("d-2", -2), ("e5", 5), ("f1", 1)] {
            lines.append(name, priority: priority)
        }
        #expect(lines.count == 6)
        #expect(lines.withFirst { $0 } == "b5")
        var taken: [String] = []
        while let next = lines.popFirst() {
            taken.append(next)
            // A priority that came and went is a line again, in its place.
            if next == "e5" { lines.append("g5", priority: 5) }
            if next == "c0" { lines.append("h9", priority: 9) }
        }
        #expect(taken == ["b5", "e5", "g5", "f1", "a0", "c0", "h9", "d-2"])
        #expect(lines.isEmpty && lines.withFirst { $0 } == nil)
    }

    @Test("a long line keeps its order while taken elements are dropped and others arrive")
    func longLine() {
        var lines = PriorityLines<Int>()
        var expected: [Int] = []
        var taken: [Int] = []
        var next = 0
        // Arrivals and takes interleaved, so the line is compacted many times over.
        for round in 0..<50 {
            for _ in 0..<(round % 7 + 3) {
                lines.append(next, priority: 1)
                expected.append(next)
                next += 1
            }
            for _ in 0..<(round % 5 + 2) {
                if let first = lines.popFirst() { taken.append(first) }
            }
            #expect(lines.count == expected.count - taken.count)
        }
        while let first = lines.popFirst() { taken.append(first) }
        #expect(taken == expected)
    }

    @Test("removing keeps the others in order, and counts")
    func removal() {
        var lines = PriorityLines<Int>()
        for value in 0..<40 { lines.append(value, priority: value % 3) }
        // Some taken first, so removal starts past a line's head.
        let firstTaken = (0..<5).compactMap { _ in lines.popFirst() }
        #expect(firstTaken == [2, 5, 8, 11, 14])
        #expect(lines.removeFirst(where: { $0 % 2 == 0 }) == 20, "the first even one in taking order")
        #expect(lines.removeFirst(where: { $0 == 1_000 }) == nil)
        let removed = lines.removeAll { $0 % 3 == 1 }
        #expect(removed == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 37])
        #expect(lines.count == 40 - 5 - 1 - 13)
        var rest: [Int] = []
        while let first = lines.popFirst() { rest.append(first) }
        #expect(rest == [17, 23, 26, 29, 32, 35, 38] + [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39])
        #expect(lines.removeAll { _ in true }.isEmpty)
    }
}
