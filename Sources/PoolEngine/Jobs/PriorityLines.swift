/// Elements waiting by priority: the highest first, then in the order they came. A job
/// worker's queue (``JobScheduler``).
///
/// One first-in first-out line per priority, so taking the first moves none of the others: a
/// binary heap of the scheduler's entries moved about six of them per job with 64 queued, each
/// with its references to count, and cost a job worker more than the job (decision 0033). Jobs
/// mostly come in one priority or a few, so finding a line is a short scan.
struct PriorityLines<Element> {
    private struct Line {
        var priority: Int
        /// Taken elements are nil up to `head`, and dropped once they are half the line.
        var elements: [Element?]
        var head = 0
    }

    /// Highest priority first; no line is empty.
    private var lines: [Line] = []
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// `body` applied to the element ``popFirst()`` takes next, without copying it out.
    func withFirst<Result>(_ body: (Element) -> Result) -> Result? {
        guard let line = lines.first, let first = line.elements[line.head] else { return nil }
        return body(first)
    }

    /// Queues `element` behind those of its priority.
    mutating func append(_ element: Element, priority: Int) {
        count += 1
        let index = lines.firstIndex { $0.priority <= priority } ?? lines.count
        if index < lines.count && lines[index].priority == priority {
            lines[index].elements.append(element)
        } else {
            lines.insert(Line(priority: priority, elements: [element]), at: index)
        }
    }

    mutating func popFirst() -> Element? {
        guard !lines.isEmpty else { return nil }
        let first = lines[0].elements[lines[0].head].take()
        lines[0].head += 1
        count -= 1
        if lines[0].head == lines[0].elements.count {
            lines.removeFirst()
        } else if lines[0].head >= 32 && lines[0].head * 2 >= lines[0].elements.count {
            lines[0].elements.removeFirst(lines[0].head)
            lines[0].head = 0
        }
        return first
    }

    /// Takes out the first element, in the order ``popFirst()`` would, that `predicate` accepts.
    mutating func removeFirst(where predicate: (Element) -> Bool) -> Element? {
        var found = false
        return removeAll { element in
            guard !found, predicate(element) else { return false }
            found = true
            return true
        }.first
    }

    /// Takes out every element `predicate` accepts, in the order ``popFirst()`` would; the
    /// others keep their order. A cancel's path, so it rebuilds the lines.
    mutating func removeAll(where predicate: (Element) -> Bool) -> [Element] {
        var removed: [Element] = []
        for index in lines.indices {
            var kept: [Element?] = []
            for case let element? in lines[index].elements[lines[index].head...] {
                if predicate(element) { removed.append(element) } else { kept.append(element) }
            }
            lines[index].elements = kept
            lines[index].head = 0
        }
        lines.removeAll { $0.elements.isEmpty }
        count -= removed.count
        return removed
    }
}
