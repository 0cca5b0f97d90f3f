import PoolEngine

/// Draws the console: header, groups, workers, events, key bar, and the overlays. Pure.
public enum ConsoleView {
    public static func render(
        snapshot: PoolSnapshot?, events: [PoolEventRecord], state: ConsoleState, trends: ConsoleTrends,
        poolName: String, isHosting: Bool, width: Int, height: Int, deaths: [PostMortem] = [], banner: String? = nil,
        queues: QueueReport? = nil
    ) -> ScreenBuffer {
        var screen = ScreenBuffer(width: width, height: height)
        guard width >= 20 && height >= 5 else {
            screen.put("pooltop: too small", x: 0, y: 0, role: .message)
            return screen
        }
        guard let snapshot else {
            screen.put("pooltop — \(poolName)", x: 0, y: 0, role: .headerTitle)
            screen.put(
                state.mode == .quitting ? "the pool has stopped; nothing is left running" : "pool '\(poolName)' is not running (waiting for it)",
                x: 0, y: 2, role: .message)
            drawKeyBar(&screen, state: state, isHosting: isHosting)
            return screen
        }
        var y = drawHeader(&screen, snapshot: snapshot, state: state, trends: trends, isHosting: isHosting, banner: banner)
        y = drawGroups(&screen, snapshot: snapshot, state: state, from: y + 1)
        let eventsHeight = height >= 24 ? max(4, height / 5) : (height >= 14 ? 3 : 0)
        let workersEnd = height - 1 - (eventsHeight > 0 ? eventsHeight + 1 : 0)
        y = drawWorkers(&screen, snapshot: snapshot, state: state, trends: trends, from: y + 1, to: workersEnd)
        if eventsHeight > 0 { drawEvents(&screen, events: events, state: state, from: workersEnd, height: eventsHeight + 1) }
        drawKeyBar(&screen, state: state, isHosting: isHosting)
        switch state.mode {
        case .help(let scroll): drawHelp(&screen, state: state, scroll: scroll)
        case .confirm(let confirmation):
            // A queue job's question stays over the queue view it came from.
            if let view = state.queueViewShown {
                drawQueues(&screen, report: queues, view: view, poolName: snapshot.pool.name, message: state.message)
            }
            drawConfirm(&screen, confirmation)
        case .detail(let id): drawDetail(&screen, snapshot: snapshot, events: events, id: id)
        case .quitting: drawDialog(&screen, title: "Stopping", lines: ["Stopping pool '\(snapshot.pool.name)'…", progress(snapshot)])
        case .jobForm(let form): drawJobForm(&screen, form)
        case .jobResults(let lines): drawDialog(&screen, title: "Test jobs", lines: lines + ["", "any key closes this list"])
        case .deaths(let view): drawDeaths(&screen, deaths: deaths, view: view)
        case .queues(let view): drawQueues(&screen, report: queues, view: view, poolName: snapshot.pool.name, message: state.message)
        case .normal, .filter, .seek, .search: break
        }
        return screen
    }

    // MARK: - Parts

    static func drawHeader(
        _ screen: inout ScreenBuffer, snapshot: PoolSnapshot, state: ConsoleState, trends: ConsoleTrends, isHosting: Bool,
        banner: String? = nil
    ) -> Int {
        let pool = snapshot.pool
        var x = screen.put("pooltop", x: 0, y: 0, role: .headerTitle)
        x = screen.put(" \(pool.name)", x: x, y: 0, role: .headerValue)
        // A replay says so first, in the message colour, so nobody takes it for the live pool.
        if let banner { x = screen.put("  \(banner)", x: x, y: 0, role: .message) }
        x = label(&screen, "  pid ", "\(pool.pid)", x: x, y: 0)
        x = label(&screen, "  up ", duration(pool.uptimeSeconds), x: x, y: 0)
        x = label(&screen, "  restarts ", "\(pool.restarts.hard) hard, \(pool.restarts.soft) soft", x: x, y: 0)
        if banner == nil && !isHosting {
            screen.put(state.readOnly ? "  [attached, read-only]" : "  [attached]", x: x, y: 0, role: .headerLabel)
        }
        let running = snapshot.workers.filter { $0.state.hasProcess }.count
        let ready = snapshot.workers.filter { $0.state == .ready }.count
        x = label(&screen, "workers ", "\(running)/\(ready)/\(snapshot.workers.count)", x: 0, y: 1)
        x = label(&screen, "  jobs/s ", rate(trends.jobsPerSecond), x: x, y: 1)
        // The last four minutes, a bar per 15 s, on terminals with room for them.
        let width = ConsoleTrends.historyLength
        if screen.width >= 100 { x = screen.put(" " + sparkline(trends.jobHistory, width: width), x: x, y: 1, role: .sparkline) }
        x = label(&screen, "  conn/s ", rate(trends.connectionsPerSecond), x: x, y: 1)
        if screen.width >= 120 { x = screen.put(" " + sparkline(trends.connectionHistory, width: width), x: x, y: 1, role: .sparkline) }
        x = label(&screen, "  cpu ", "\(Int(trends.cpuPercent.rounded()))%", x: x, y: 1)
        x = label(&screen, "  mem ", bytes(snapshot.workers.reduce(0) { $0 + $1.rssBytes }), x: x, y: 1)
        if state.isPaused { screen.put("  PAUSED", x: x, y: 1, role: .message) }
        if case .seek(let text) = state.mode {
            screen.put("go to (-5m, 03:12:00, 2026-12-01T03:12:00): \(text)_", x: 0, y: 2, role: .message)
        } else if let message = state.message {
            screen.put(message, x: 0, y: 2, role: .message)
        }
        if (state.mode == .filter && state.focus != .events) || !state.filter.isEmpty {
            screen.put("filter: \(state.filter)\(state.mode == .filter && state.focus != .events ? "_" : "")", x: max(0, screen.width - 30), y: 2, role: .message)
        }
        return 2
    }

    static func drawGroups(_ screen: inout ScreenBuffer, snapshot: PoolSnapshot, state: ConsoleState, from y: Int) -> Int {
        let columns: [(String, Int)] = [
            ("GROUP", 14), ("KIND", 8), ("MIN/WANT/MAX", 13), ("RUN", 4), ("READY", 6), ("RESTARTS", 9), ("JOBS IN/DONE/ERR/REJ", 22), ("CONNS", 6),
        ]
        header(&screen, columns, y: y)
        var row = y + 1
        for (index, group) in snapshot.groups.enumerated() where row < screen.height - 2 {
            let workers = snapshot.workers.filter { $0.groupID == group.id }
            let restarts = workers.reduce(0) { $0 + $1.restarts }
            let a = workers.map(\.activity)
            let jobs = "\(a.reduce(0) { $0 + $1.jobsInFlight })/\(a.reduce(0) { $0 + $1.jobsProcessed })/\(a.reduce(0) { $0 + $1.jobsErrors })/\(a.reduce(0) { $0 + $1.jobsRejected })"
            // A group waiting for others (`after:`) has no work to show: say what it waits for.
            let cells = [
                group.name, group.kind.rawValue, "\(group.min)/\(group.desired)/\(group.max)", "\(group.running)", "\(group.ready)",
                "\(restarts)", group.waitingFor.map { "waits: \($0)" } ?? jobs, "\(a.reduce(0) { $0 + $1.connectionsActive })",
            ]
            put(&screen, cells, columns, y: row, role: .normal)
            if index == state.selectedGroup {
                screen.paint(state.focus == .groups ? .rowSelected : .headerValue, y: row)
            }
            row += 1
        }
        return row
    }

    static func drawWorkers(
        _ screen: inout ScreenBuffer, snapshot: PoolSnapshot, state: ConsoleState, trends: ConsoleTrends, from y: Int, to end: Int
    ) -> Int {
        let wide = screen.width >= 100
        var columns: [(String, Int)] = [("ID", 4), ("PID", 8), ("STATE", 14), ("UP", 7), ("RST", 4), ("LAST EXIT", 16), ("JOBS IN/DONE/ERR", 17)]
        if wide { columns += [("CURRENT JOB", 14), ("CONN", 5), ("RSS", 8), ("CPU%", 6)] }
        header(&screen, columns, y: y)
        let workers = ConsoleReducer.visibleWorkers(snapshot, state)
        let visibleRows = max(end - y - 1, 0)
        let first = max(0, min(state.selectedWorker - visibleRows + 1, max(workers.count - visibleRows, 0)))
        var row = y + 1
        for (index, worker) in workers.enumerated().dropFirst(first) where row < end {
            var stateText = worker.state == .finished ? "done" : worker.state.rawValue
            if worker.state == .backoff, let until = worker.backoffUntil {
                stateText += " \(seconds(max(0, until - snapshot.takenAt)))"
            }
            let exit = worker.lastExit.map { exit in
                "\(exit.reason.rawValue)" + (exit.signal.map { " sig\($0)" } ?? exit.code.map { $0 == 0 ? "" : " \($0)" } ?? "")
            } ?? "-"
            let a = worker.activity
            var cells = [
                "\(worker.id)", worker.pid == 0 ? "-" : "\(worker.pid)", stateText,
                worker.state.hasProcess ? worker.startedAt.map { duration(snapshot.takenAt - $0) } ?? "-" : "-", "\(worker.restarts)", exit,
                "\(a.jobsInFlight)/\(a.jobsProcessed)/\(a.jobsErrors)",
            ]
            if wide {
                let current = a.currentJobID == 0 ? "-" : "#\(a.currentJobID) \(seconds(max(0, snapshot.takenAt - Double(a.currentJobSince) / 1e9)))"
                let cpu = trends.workerCPUPercent[worker.id].map { "\(Int($0.rounded()))" } ?? "-"
                cells += [current, "\(a.connectionsActive)", worker.rssBytes == 0 ? "-" : bytes(worker.rssBytes), cpu]
            }
            put(&screen, cells, columns, y: row, role: role(for: worker.state))
            if trends.isNew(worker, now: snapshot.takenAt) { screen.paint(.rowNew, y: row) }
            if let exit = worker.lastExit, !worker.state.hasProcess, snapshot.takenAt - exit.at < 3 { screen.paint(.rowGone, y: row) }
            if index == state.selectedWorker && state.focus == .workers { screen.paint(.rowSelected, y: row) }
            row += 1
        }
        if workers.isEmpty { screen.put("  no workers match", x: 0, y: y + 1, role: .headerLabel) }
        return row
    }

    static func drawEvents(_ screen: inout ScreenBuffer, events: [PoolEventRecord], state: ConsoleState, from y: Int, height: Int) {
        let titleRole: StyleRole = state.focus == .events ? .rowSelected : .tableHeader
        screen.fill(y: y, role: titleRole)
        let matching = ConsoleReducer.visibleEvents(events, state)
        let scroll = min(state.eventsScroll, max(0, matching.count - 1))
        var title = "EVENTS AND LOGS"
        if state.eventScope != .all { title += " (selected \(state.eventScope.rawValue))" }
        if !state.eventFilter.isEmpty || (state.mode == .filter && state.focus == .events) {
            title += "  filter: \(state.eventFilter)\(state.mode == .filter ? "_" : "")  (\(matching.count) of \(events.count))"
        }
        let matches = ConsoleReducer.searchMatches(matching, state)
        if state.mode == .search || !state.eventSearch.isEmpty {
            title += "  /\(state.eventSearch)\(state.mode == .search ? "_" : "")  (\(matches.count) found)"
        }
        if scroll > 0 || state.followPaused { title += "  ↑ \(scroll) newer below, \(state.followPaused ? "paused, f" : "End") follows" }
        screen.put(title, x: 0, y: y, role: titleRole)
        // The rows from the bottom up: a line that wraps takes several.
        let shownCount = matching.count - scroll
        let current = matches.isEmpty ? nil : matches[max(0, matches.count - 1 - min(state.searchMatch, matches.count - 1))]
        let matchSet = Set(matches)
        var rows: [(text: String, role: StyleRole, line: Int, first: Bool)] = []
        var index = shownCount - 1
        while index >= 0 && rows.count < height - 1 {
            let (text, role) = describe(matching[index])
            let full = "\(clock(matching[index].at)) \(text)"
            var pieces = [full]
            if state.wrapEvents && full.count > screen.width && screen.width > 0 {
                pieces = stride(from: 0, to: full.count, by: screen.width).map { start in
                    String(full.dropFirst(start).prefix(screen.width))
                }
            }
            for (number, piece) in pieces.enumerated().reversed() {
                rows.insert((piece, role, index, number == 0), at: 0)
            }
            index -= 1
        }
        let visibleRows = rows.suffix(height - 1)
        let needle = state.eventSearch.lowercased()
        for (offset, row) in visibleRows.enumerated() {
            let rowY = y + 1 + offset
            screen.put(row.text, x: 0, y: rowY, role: row.role)
            guard matchSet.contains(row.line) else { continue }
            if row.line == current { screen.paint(.rowSelected, y: rowY, to: row.text.count) }
            // Every occurrence on the row (found in any case), in the message colour.
            let lowered = Array(row.text.lowercased())
            let pattern = Array(needle)
            var column = 0
            while !pattern.isEmpty && column + pattern.count <= lowered.count {
                if Array(lowered[column..<column + pattern.count]) == pattern {
                    screen.paint(.message, y: rowY, from: column, to: column + pattern.count)
                    column += pattern.count
                } else {
                    column += 1
                }
            }
        }
    }

    static func drawKeyBar(_ screen: inout ScreenBuffer, state: ConsoleState, isHosting: Bool) {
        let y = screen.height - 1
        screen.fill(y: y, role: .keyBarLabel)
        var keys: [(String, String)] = [("F1?", "Help"), ("↑↓", "Move"), ("Tab", "Panel"), ("Enter", "Detail"), ("/", "Filter")]
        if state.isReplay {
            keys = [("F1?", "Help"), ("←→", "1s"), ("PgUp/Dn", "1m"), ("g", "Go to"), ("G", "Newest"), ("↑↓", "Move"), ("Tab", "Panel"), ("d", "Deaths")]
        } else if !state.readOnly {
            keys += [("+-", "Scale"), ("r", "Restart"), ("R", "Group"), ("H", "Hard"), ("k", "Kill"), ("j", "Job")]
        }
        if state.queuesUnavailable == nil && !state.isReplay { keys.append(("Q", "Queues")) }
        keys += [("t", "Theme"), ("p", "Pause"), ("q", isHosting || state.isReplay ? "Quit" : "Detach")]
        var x = 0
        for (key, label) in keys where x < screen.width {
            x = screen.put(key, x: x, y: y, role: .keyBar)
            x = screen.put(label + " ", x: x, y: y, role: .keyBarLabel)
        }
    }

    static func drawHelp(_ screen: inout ScreenBuffer, state: ConsoleState, scroll: Int) {
        let entries = ConsoleHelp.entries(for: state).map { entry in
            entry.keys.padding(toLength: 14, withPad: " ", startingAt: 0) + entry.meaning
        }
        // The dialog's rows inside its frame, less the blank line and the footer.
        let room = max(screen.height - 6, 1)
        guard entries.count > room else {
            drawDialog(&screen, title: "Help", lines: entries + ["", "any key closes this help"])
            return
        }
        let first = min(scroll, entries.count - room)
        let below = entries.count - first - room
        let footer = below > 0 ? "↓ j: \(below) more below   ↑ k: back   any other key closes" : "↑ k: back   any other key closes"
        drawDialog(&screen, title: "Help (\(first + 1)–\(first + room) of \(entries.count))", lines: Array(entries[first..<first + room]) + ["", footer])
    }

    static func drawJobForm(_ screen: inout ScreenBuffer, _ form: JobForm) {
        let labels = ["payload", "priority", "weight", "count"]
        var lines = ["Submit test jobs to group \(form.group)", ""]
        for field in JobForm.Field.allCases {
            let cursor = field == form.field ? "_" : ""
            let marker = field == form.field ? "▸ " : "  "
            lines.append(marker + labels[field.rawValue].padding(toLength: 10, withPad: " ", startingAt: 0) + form[field] + cursor)
        }
        lines += ["", "Tab/↑↓ next field   Enter submit   Esc cancel", "demo job workers: echo TEXT, sleep MS, cpu MS, fail MSG, log N, freeze MS, crash, exit"]
        drawDialog(&screen, title: "Test jobs", lines: lines)
    }

    static func drawConfirm(_ screen: inout ScreenBuffer, _ confirmation: Confirmation) {
        let buttons = confirmation.okSelected ? "  Cancel  [ OK ]   (y: yes, Esc: no)" : "[ Cancel ]  OK     (y: yes, Esc: no)"
        drawDialog(&screen, title: "Confirm", lines: wrap(confirmation.question, width: max(screen.width - 8, 10)) + ["", buttons])
    }

    static func drawDetail(_ screen: inout ScreenBuffer, snapshot: PoolSnapshot, events: [PoolEventRecord], id: WorkerID) {
        guard let worker = snapshot.worker(id) else { return }
        let a = worker.activity
        var lines = [
            "group \(worker.group)   pid \(worker.pid == 0 ? "-" : "\(worker.pid)")   state \(worker.state.rawValue)   generation \(worker.generation)",
            "restarts \(worker.restarts)   rss \(bytes(worker.rssBytes))   cpu \(worker.cpuSeconds)s",
            "jobs: \(a.jobsAccepted) accepted, \(a.jobsProcessed) done, \(a.jobsErrors) errors, \(a.jobsRejected) rejected, \(a.jobsInFlight) in flight",
            "connections: \(a.connectionsAccepted) accepted, \(a.connectionsActive) active, \(a.connectionsErrors) errors",
        ]
        if let exit = worker.lastExit {
            lines.append("last exit: \(exit.reason.rawValue), \(exit.code.map { "code \($0)" } ?? exit.signal.map { "signal \($0)" } ?? exit.status) at \(clock(exit.at))")
        }
        let mine = events.filter { record in
            switch record.event {
            case .workerExited(let exit): return exit.id == id
            case .workerLog(let worker, _, _), .workerReady(let worker, _, _, _), .workerKilled(let worker, _, _, _): return worker == id
            default: return false
            }
        }.suffix(8)
        lines.append("")
        lines.append(mine.isEmpty ? "no recent events" : "recent:")
        for record in mine { lines.append("\(clock(record.at)) \(describe(record).0)") }
        drawDialog(&screen, title: "Worker \(id)", lines: lines)
    }

    /// The deaths view: the list (newest first) or the selected post-mortem, scrolled.
    static func drawDeaths(_ screen: inout ScreenBuffer, deaths: [PostMortem], view: ConsoleState.Deaths) {
        let room = max(1, screen.height - 6)
        guard !deaths.isEmpty else {
            drawDialog(&screen, title: "Deaths", lines: ["No worker death is on record yet (pooltop why shows the same).", "", "Esc closes"])
            return
        }
        let selected = min(view.selected, deaths.count - 1)
        if view.opened {
            let text = PostMortemText.lines(deaths[selected])
            let scroll = min(view.scroll, max(0, text.count - room))
            let shown = Array(text.dropFirst(scroll).prefix(room))
            drawDialog(
                &screen, title: "Post-mortem \(selected + 1) of \(deaths.count)  (j k scroll, Esc back)",
                lines: shown + Array(repeating: "", count: max(0, room - shown.count)))
            return
        }
        // The selection stays in sight.
        let first = max(0, selected - room + 3)
        var lines = ["   TIME     WORKER     GROUP        REASON       STATUS         UPTIME     JOB"]
        for (index, record) in deaths.enumerated().dropFirst(first).prefix(room - 2) {
            lines.append((index == selected ? " > " : "   ") + PostMortemText.summary(record))
        }
        lines.append("Enter opens one, Esc closes")
        drawDialog(&screen, title: "Deaths, newest first (\(deaths.count))", lines: lines)
    }

    static func drawDialog(_ screen: inout ScreenBuffer, title: String, lines: [String]) {
        let width = min(screen.width - 2, max(lines.map(\.count).max() ?? 0, title.count) + 4)
        let height = min(screen.height - 2, lines.count + 2)
        let left = max(0, (screen.width - width) / 2)
        let top = max(0, (screen.height - height) / 2)
        for row in 0..<height { screen.fill(y: top + row, from: left, to: left + width, role: .dialog) }
        screen.put(" \(title) ", x: left + 1, y: top, role: .dialogTitle)
        for (index, line) in lines.prefix(height - 2).enumerated() {
            screen.put(line, x: left + 2, y: top + 1 + index, role: .dialog, maxWidth: width - 3)
        }
    }

    // MARK: - Text

    static func describe(_ record: PoolEventRecord) -> (String, StyleRole) {
        switch record.event {
        case .workerLog(let id, let group, let log):
            let role: StyleRole = ["error", "critical"].contains(log.level) ? .eventError : log.level == "warning" ? .eventWarning : .eventInfo
            return ("[\(group)#\(id)] \(log.message)", role)
        case .workerStarting(let id, let group, let pid, _): return ("worker \(id) (\(group)) starting, pid \(pid)", .eventInfo)
        case .workerReady(let id, let group, let pid, _): return ("worker \(id) (\(group)) ready, pid \(pid)", .eventInfo)
        case .workerStopRequested(let id, let group, let reason): return ("worker \(id) (\(group)) asked to stop (\(reason.rawValue))", .eventInfo)
        case .workerKilled(let id, let group, _, let why): return ("worker \(id) (\(group)) killed: \(why)", .eventWarning)
        case .workerExited(let exit):
            let expected: Set<ExitReason> = [.shutdown, .scaleDown, .restart, .cleanExit, .terminate, .stopped, .quota]
            let status = exit.status.map { "\($0)" } ?? "not started"
            return ("worker \(exit.id) (\(exit.group)) exited: \(exit.reason.rawValue), \(status)\(exit.message.map { ": \($0)" } ?? "")", expected.contains(exit.reason) ? .eventInfo : .eventError)
        case .workerBackingOff(let id, let group, let delay): return ("worker \(id) (\(group)) restarts in \(format(delay))", .eventWarning)
        case .workerFailed(let id, let group, let why): return ("worker \(id) (\(group)) will not be restarted: \(why)", .eventError)
        case .workerSpawnFailed(let id, let group, let error): return ("worker \(id) (\(group)) could not be spawned: \(error)", .eventError)
        case .workerHung(let id, let group, _, let why): return ("worker \(id) (\(group)) \(why): capturing its backtrace, then killing it", .eventError)
        case .workerBacktrace(let id, let group, _, let backtrace):
            // One line here; `pooltop logs` has the whole text.
            let lines = backtrace.split(separator: "\n").count
            return ("worker \(id) (\(group)) backtrace captured (\(lines) lines; pooltop logs shows it)", .eventError)
        case .groupScaled(let group, let from, let to): return ("group \(group) scaled from \(from) to \(to)", .eventInfo)
        case .groupWaiting(let group, let waitingFor): return ("group \(group) waits for \(waitingFor)", .eventInfo)
        case .groupRolling(let group, let progress):
            if case .failed = progress { return ("group \(group): \(progress)", .eventError) }
            return ("group \(group): \(progress)", .eventInfo)
        case .poolApplied(let changes): return ("configuration applied: \(PoolChange.summary(changes))", .eventWarning)
        case .poolRestarting(let hard): return ("\(hard ? "hard" : "soft") restart of the pool", .eventWarning)
        case .poolStopping(let reason): return ("pool stopping: \(reason)", .eventWarning)
        }
    }

    static func progress(_ snapshot: PoolSnapshot) -> String {
        let left = snapshot.workers.filter { $0.state.hasProcess }.count
        return left == 0 ? "every worker has stopped" : "\(left) worker(s) still stopping"
    }

    static func role(for state: WorkerState) -> StyleRole {
        switch state {
        case .ready: return .workerReady
        case .starting: return .workerStarting
        case .stopping: return .workerStopping
        case .backoff: return .workerBackoff
        case .failed: return .workerFailed
        case .stopped, .finished: return .workerStopped
        }
    }

    static func header(_ screen: inout ScreenBuffer, _ columns: [(String, Int)], y: Int) {
        screen.fill(y: y, role: .tableHeader)
        put(&screen, columns.map(\.0), columns, y: y, role: .tableHeader)
    }

    static func put(_ screen: inout ScreenBuffer, _ cells: [String], _ columns: [(String, Int)], y: Int, role: StyleRole) {
        var x = 0
        for (cell, column) in zip(cells, columns) where x < screen.width {
            screen.put(cell, x: x, y: y, role: role, maxWidth: column.1 - 1)
            x += column.1
        }
    }

    @discardableResult
    static func label(_ screen: inout ScreenBuffer, _ name: String, _ value: String, x: Int, y: Int) -> Int {
        let next = screen.put(name, x: x, y: y, role: .headerLabel)
        return screen.put(value, x: next, y: y, role: .headerValue)
    }

    static func sparkline(_ values: [Double], width: Int) -> String {
        let bars: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        let recent = values.suffix(width)
        let top = max(recent.max() ?? 0, 1)
        let line = recent.map { bars[min(bars.count - 1, Int(($0 / top) * Double(bars.count - 1)))] }
        return String(repeating: " ", count: width - line.count) + String(line)
    }

    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if line.count + word.count + 1 > width && !line.isEmpty {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }

    static func duration(_ seconds: Double) -> String { Formatting.duration(seconds) }
    static func seconds(_ value: Double) -> String { "\(Formatting.tenths(value))s" }
    static func clock(_ seconds: Double) -> String { Formatting.clock(seconds) }

    static func rate(_ value: Double) -> String { value >= 100 ? "\(Int(value))" : "\(Double(Int(value * 10)) / 10)" }

    static func bytes(_ value: UInt64) -> String { Formatting.bytes(value) }
}
