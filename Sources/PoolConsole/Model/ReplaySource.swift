import PoolEngine

/// How the replay console moves through a recording.
public enum ReplaySeek: Hashable, Sendable {
    /// Seconds forward (negative: back).
    case by(Int)
    /// To a moment as ``ReplayTime`` reads it.
    case to(String)
    case oldest
    /// The newest frame, reading the recording again (a running pool has written more).
    case newest
}

/// A pool's flight recording as the console's source (`pooltop replay`): every view shows the
/// frame at the cursor, the events pane the events recorded up to it, and nothing can be changed.
public final class ReplaySource: ConsoleSource {
    private struct Cursor {
        var index: Int
        var frame: FlightFrame?
        var frameIndex = -1
        /// The events pane's lines for `eventsIndex`: the console asks every turn.
        var events: [PoolEventRecord] = []
        var eventsIndex = -1
    }

    public let recording: FlightRecording
    private let cursor: Locked<Cursor>
    /// Decoding failures of the frame at the cursor, for the message line.
    private let problem = Locked<String?>(nil)
    /// Why the frame at the cursor could not be read, if it could not.
    public var frameProblem: String? { problem.withLock { $0 } }

    /// Opens at the frame taken at or just before `time`, or at the newest frame.
    public init(recording: FlightRecording, at time: Double? = nil) {
        self.recording = recording
        let index = time.map { recording.index(at: $0) } ?? max(0, recording.frames.count - 1)
        cursor = Locked(Cursor(index: index))
    }

    public var poolName: String { recording.pool }
    public var isHosting: Bool { false }
    public var replay: ReplaySource? { self }

    /// The moment of the frame at the cursor, seconds since the epoch.
    public var time: Double { cursor.withLock { recording.frames[$0.index].time } }

    public func snapshot() -> PoolSnapshot? { currentFrame()?.snapshot }

    /// The frame at the cursor, decoded once.
    public func currentFrame() -> FlightFrame? {
        cursor.withLock { cursor in
            if cursor.frameIndex != cursor.index {
                do {
                    cursor.frame = try recording.frame(cursor.index)
                    problem.withLock { $0 = nil }
                } catch {
                    cursor.frame = nil
                    problem.withLock { $0 = "\(error)" }
                }
                cursor.frameIndex = cursor.index
            }
            return cursor.frame
        }
    }

    /// The events recorded up to the cursor, oldest first: as many as the live console keeps,
    /// from the frames of at most the last 15 minutes.
    public func recentEvents() -> [PoolEventRecord] {
        cursor.withLock { cursor in
            guard cursor.eventsIndex != cursor.index else { return cursor.events }
            var collected: [[PoolEventRecord]] = []
            var count = 0
            var frame = cursor.index
            while frame >= 0 && count < 1000 && cursor.index - frame < 900 {
                // try?: a frame that cannot be read has no lines to show; the others still do.
                if let events = try? recording.events(frame) {
                    collected.append(events)
                    count += events.count
                }
                frame -= 1
            }
            cursor.events = Array(collected.reversed().joined().suffix(1000))
            cursor.eventsIndex = cursor.index
            return cursor.events
        }
    }

    public func perform(_ command: ConsoleCommand) async -> ConsoleOutcome {
        ConsoleOutcome("this is a replay: a recording cannot be changed")
    }

    /// Moves the cursor; what to tell the operator.
    public func seek(_ move: ReplaySeek, now: Double) -> String? {
        if move == .newest { try? recording.reload() }  // try?: on failure the frames read before stay
        let frames = recording.frames
        guard !frames.isEmpty else { return "the recording is empty" }
        var message: String?
        cursor.withLock { cursor in
            switch move {
            case .by(let seconds):
                let target = frames[cursor.index].time + Double(seconds)
                var index = recording.index(at: target + 0.5)
                // A step always moves, even over a gap in the recording.
                if seconds > 0 && index <= cursor.index { index = cursor.index + 1 }
                if seconds < 0 && index >= cursor.index { index = cursor.index - 1 }
                if index < 0 || index >= frames.count {
                    message = index < 0 ? "the recording starts here" : "the recording ends here (End reads it again)"
                }
                cursor.index = max(0, min(frames.count - 1, index))
            case .to(let text):
                switch ReplayTime.parse(text, now: now) {
                case .success(let time):
                    cursor.index = recording.index(at: time)
                    if time < frames[0].time {
                        message = "the recording starts at \(ReplayTime.format(frames[0].time))"
                    } else if time > frames[frames.count - 1].time + 1.5 {
                        message = "the recording ends at \(ReplayTime.format(frames[frames.count - 1].time))"
                    }
                case .failure(let error):
                    message = error.description
                }
            case .oldest:
                cursor.index = 0
            case .newest:
                cursor.index = frames.count - 1
                // Read again: the same index may now be another frame.
                cursor.frameIndex = -1
                cursor.eventsIndex = -1
            }
        }
        return message ?? problem.withLock { $0 }
    }

    /// The header's line: plainly a replay, of when, and what the recording covers.
    public var banner: String {
        let frames = recording.frames
        let index = cursor.withLock { $0.index }
        guard !frames.isEmpty else { return "REPLAY (empty recording)" }
        // The day only where it differs from the moment's: the line must fit beside the pool's figures.
        let moment = ReplayTime.format(frames[index].time)
        func short(_ time: Double) -> String {
            let text = ReplayTime.format(time)
            return text.prefix(10) == moment.prefix(10) ? String(text.dropFirst(11)) : text
        }
        return "REPLAY of \(moment) (frame \(index + 1) of \(frames.count), \(short(frames[0].time)) to \(short(frames[frames.count - 1].time)))"
    }

    /// Frames to compute the header's rates and sparklines at the cursor from: one per
    /// sparkline interval over the last four minutes, then the second before and the cursor's.
    public func trendFrames() -> [PoolSnapshot] {
        let index = cursor.withLock { $0.index }
        let frames = recording.frames
        guard frames.indices.contains(index) else { return [] }
        let now = frames[index].time
        let span = ConsoleTrends.bucketSeconds * Double(ConsoleTrends.historyLength)
        var picked: [Int] = []
        var moment = now - span
        while moment < now - 1 {
            let candidate = recording.index(at: moment)
            if frames[candidate].time >= now - span - ConsoleTrends.bucketSeconds, picked.last != candidate, candidate < index {
                picked.append(candidate)
            }
            moment += ConsoleTrends.bucketSeconds
        }
        if index > 0, picked.last != index - 1 { picked.append(index - 1) }
        picked.append(index)
        // try?: a frame that cannot be read is left out of the rates; the others still give them.
        return picked.compactMap { try? recording.frame($0).snapshot }
    }
}
