import PoolEngine

/// The queue view (`Q`): a panel over the pool's screen with each queue group's database
/// state, its queues' figures (the columns of `pooltop queue`) and the dead jobs.
extension ConsoleView {
    static func drawQueues(
        _ screen: inout ScreenBuffer, report: QueueReport?, view: ConsoleState.QueueView, poolName: String, message: String?
    ) {
        // The whole width, so nothing of the workers' table shows at the edges.
        let left = 0
        let width = screen.width
        let top = 1
        let bottom = screen.height - 2  // The key bar stays visible.
        guard bottom > top + 1 else { return }
        for row in top...bottom { screen.fill(y: row, from: left, to: left + width, role: .dialog) }
        var title = " Queues of pool '\(poolName)'"
        if let report { title += ", read at \(clock(report.readAt))" }
        screen.put(title + " ", x: left + 1, y: top, role: .dialogTitle, maxWidth: width - 2)
        // The panel covers the header's message line: what came of a retry or discard shows here.
        if let message { screen.put(message, x: left + 1, y: bottom, role: .message, maxWidth: width - 2) }
        var y = top + 1
        func line(_ text: String, role: StyleRole = .dialog) {
            guard y < bottom else { return }
            screen.put(text, x: left + 1, y: y, role: role, maxWidth: width - 2)
            y += 1
        }
        guard let report else {
            line("reading the queues…")
            return
        }
        guard !report.groups.isEmpty else {
            line("Pool '\(poolName)' has no running postgres-queue group (or it has not connected yet).")
            line("Esc closes", role: .headerLabel)
            return
        }
        let dead = report.deadJobs
        if view.opened, dead.indices.contains(view.selected) {
            drawDeadJob(dead[view.selected], of: dead.count, index: view.selected, report: report, width: width - 4, line: line)
            return
        }
        // `pooltop queue`'s columns, in 78 columns at most: an 80-column terminal shows them all.
        let columns: [(String, Int)] = [
            ("QUEUE", 17), ("AVAILABLE", 10), ("SCHEDULED", 10), ("RETRYING", 9), ("RUNNING", 8), ("DEAD", 7), ("DONE/MIN", 9), ("OLDEST", 8),
        ]
        for group in report.groups {
            line("group \(group.name): \(group.state)", role: group.isConnected ? .dialog : .eventError)
            if let problem = group.problem {
                line("  the console cannot read this queue: \(problem)", role: .eventError)
                continue
            }
            line(row(columns.map(\.0), columns), role: .tableHeader)
            for queue in group.queues {
                line(
                    row(
                        [
                            queue.queue, "\(queue.available)", "\(queue.scheduled)", "\(queue.retrying)", "\(queue.running)", "\(queue.dead)",
                            "\(queue.doneLastMinute)", queue.oldestAge.map(Formatting.shortDuration) ?? "-",
                        ], columns))
            }
        }
        y += y < bottom ? 1 : 0
        line(
            dead.isEmpty ? "No dead job." : "DEAD JOBS (\(dead.count), newest first)   ↑↓ select  Enter open  r retry  x discard  Esc close",
            role: .headerLabel)
        guard !dead.isEmpty, y < bottom else { return }
        // The error takes what the other columns leave: it is what an operator reads first.
        let payload = width >= 110 ? 24 : 12
        let fixed = 9 + 13 + 6 + 11 + payload
        let deadColumns: [(String, Int)] = [
            ("ID", 9), ("QUEUE", 13), ("TRIES", 6), ("DIED", 11), ("LAST ERROR", max(width - 4 - fixed, 12)), ("PAYLOAD", payload),
        ]
        line("  " + row(deadColumns.map(\.0), deadColumns), role: .tableHeader)
        // The selection stays in sight.
        let room = max(bottom - y, 1)
        let selected = min(view.selected, dead.count - 1)
        let first = max(0, min(selected - room + 1, dead.count - room))
        for (index, entry) in dead.enumerated().dropFirst(first) where y < bottom {
            let job = entry.job
            let died = Formatting.duration(report.readAt - job.finishedAt) + " ago"
            let cells = ["\(job.id)", job.queue, "\(job.attempts)", died, oneLine(job.lastError), oneLine(job.payloadHead)]
            let rowY = y
            line((index == selected ? "> " : "  ") + row(cells, deadColumns))
            if index == selected { screen.paint(.rowSelected, y: rowY, from: left + 1, to: left + width - 1) }
        }
    }

    private static func drawDeadJob(
        _ entry: (group: String, job: DeadJob), of count: Int, index: Int, report: QueueReport, width: Int,
        line: (String, StyleRole) -> Void
    ) {
        let job = entry.job
        line("Dead job \(job.id) (\(index + 1) of \(count)), queue \(job.queue), group \(entry.group)", .tableHeader)
        line(
            "\(job.attempts) attempt\(job.attempts == 1 ? "" : "s"), died at \(clock(job.finishedAt)) (\(Formatting.duration(report.readAt - job.finishedAt)) before this read)",
            .dialog)
        line("payload (first bytes): \(oneLine(job.payloadHead))", .dialog)
        line("", .dialog)
        line("last error:", .headerLabel)
        for text in job.lastError.split(separator: "\n", omittingEmptySubsequences: false) {
            for piece in wrap(oneLine(String(text)), width: max(width, 10)) { line("  " + piece, .eventError) }
        }
        line("", .dialog)
        line("r retry  x discard  Esc back to the list", .headerLabel)
    }

    private static func row(_ cells: [String], _ columns: [(String, Int)]) -> String {
        zip(cells, columns).map { cell, column in
            let cut = String(cell.prefix(column.1 - 1))
            return cut.padding(toLength: column.1, withPad: " ", startingAt: 0)
        }.joined()
    }

    /// Text from a database on one row: control characters (newlines in an error, bytes of a
    /// binary payload) as spaces, so they cannot move the terminal's cursor.
    private static func oneLine(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : $0 }))
    }
}
