import NIOCore
import Synchronization

/// A job connection's lane: 16 KiB of memory the sender and the job worker share (a memfd the
/// sender passes with the connection's first frame), where a lone sender's request and its
/// answer travel without the socket (decision 0031).
///
/// On one CPU a socket round trip is mostly kernel time: two `send`s, two reads and a wait in
/// `epoll_wait` (decision 0026). Through the lane, a request is a copy and a store, and the
/// only system call left is the `sched_yield` with which each side, spinning, hands the CPU to
/// the other. So it is used only where both sides spin: the sender under
/// ``JobWaitMode/spin``, and the worker's job thread for ``serverSpinBudget`` after each
/// answer, with the lane armed. Any other job, and any frame that does not fit, goes by the
/// socket as before; so does every job when either side is not spinning.
///
/// Two words decide who owns what, each changed by compare-and-swap so that no copy is ever
/// read half-written and no request waits for a worker that went to sleep:
/// - the **inbox**: asleep → polling (the worker arms it) → writing → posted (the sender's
///   request) → taken (the worker copied it) → polling again or asleep. The worker goes to
///   sleep only by swapping polling for asleep, so a sender either posts first, and the worker
///   takes its request, or finds the lane asleep and uses the socket.
/// - the **outbox**: the id of the job the sender waits for here, or 0. The worker swaps that
///   id for a writing mark, copies its answer and marks it ready; a sender that stops waiting
///   swaps the id for 0, and then the worker's swap fails and the answer goes by the socket.
///   An answer for any other job (a late one for a job the sender gave up on) never matches.
///
/// The worker trusts nothing in the lane: lengths are bounded by the areas and frames decoded
/// as they are from the socket, so a sender that scribbles on it only breaks its own connection.
final class JobLane: Sendable {
    static let size = 16 * 1024
    /// Where a posted request's bytes are.
    static let requestArea = 256..<(8 * 1024)
    /// Where an answer's bytes are.
    static let answerArea = (8 * 1024)..<size

    /// How long the worker's job thread keeps looking at its armed lanes after their last
    /// answer or request before it sleeps: it burns its CPU meanwhile (yielding it to anything
    /// due), so it is about a lone sender's gap between two jobs, no more.
    static let serverSpinBudget: UInt64 = 100_000
    /// How long a lane may stay half-written (its inbox `writing`) before the worker closes its
    /// connection: copying a request takes a microsecond.
    static let halfWrittenLimit: UInt64 = 100_000_000

    enum Inbox: UInt64 {
        case asleep = 0
        case polling = 1
        case writing = 2
        case posted = 3
        case taken = 4
    }

    /// Outbox marks; job ids count up from 1 and never reach them.
    static let answerWriting: UInt64 = 1 << 63 | 1
    static let answerReady: UInt64 = 1 << 63 | 2

    // Each word on its own cache line: the two sides write different ones.
    private static let magicOffset = 0
    private static let inboxOffset = 64
    private static let requestLengthOffset = 72
    private static let clientSpinsOffset = 128
    private static let outboxOffset = 192
    private static let answerLengthOffset = 200
    private static let magic: UInt64 = 0x3130_454E_414C_5450  // "PTLANE01", little-endian

    private let mapping: Posix.Mapping

    private init(mapping: Posix.Mapping) {
        self.mapping = mapping
    }

    deinit { mapping.unmap() }

    /// The sender's side: a new lane, and the descriptor to pass to the worker (the caller closes it).
    static func create() throws -> (JobLane, Posix.FD) {
        let (mapping, fd) = try Posix.createAnonymousSharedMemory(name: "pooltop-job-lane", size: size)
        mapping.word(magicOffset).pointee.store(magic, ordering: .releasing)
        return (JobLane(mapping: mapping), fd)
    }

    /// The worker's side: maps the lane a sender passed (the caller closes `fd`).
    static func map(passed fd: Posix.FD) throws -> JobLane {
        let mapping = try Posix.mapPassedSharedMemory(fd, size: size, name: "a sender's job lane")
        guard mapping.word(magicOffset).pointee.load(ordering: .acquiring) == magic else {
            mapping.unmap()
            throw JobFrameError(message: "the shared file passed with the 'lane' frame is not a job lane")
        }
        return JobLane(mapping: mapping)
    }

    private func word(_ offset: Int) -> UnsafeMutablePointer<Atomic<UInt64>> { mapping.word(offset) }

    // MARK: - The sender's side

    /// Whether the sender spins for its answers now: the worker arms the lane only then.
    func setClientSpins(_ spins: Bool) {
        let value: UInt64 = spins ? 1 : 0
        // Read first: the line is the worker's to read on every answer, and a store would take it away.
        if word(Self.clientSpinsOffset).pointee.load(ordering: .relaxed) != value {
            word(Self.clientSpinsOffset).pointee.store(value, ordering: .relaxed)
        }
    }

    /// The sender waits here for job `jobID`'s answer (set before the request can reach the worker).
    func expectAnswer(_ jobID: UInt64) {
        word(Self.outboxOffset).pointee.store(jobID, ordering: .releasing)
    }

    /// Posts a request frame if the worker polls the lane and it fits; false: send it by the socket.
    func post(_ frame: ByteBuffer) -> Bool {
        let length = frame.readableBytes
        guard length <= Self.requestArea.count else { return false }
        let inbox = word(Self.inboxOffset)
        guard inbox.pointee.compareExchange(expected: Inbox.polling.rawValue, desired: Inbox.writing.rawValue, ordering: .acquiringAndReleasing).exchanged
        else { return false }
        copy(frame, into: Self.requestArea, lengthAt: Self.requestLengthOffset)
        inbox.pointee.store(Inbox.posted.rawValue, ordering: .releasing)
        return true
    }

    /// The answer, if the worker has put it here; the outbox is free again either way.
    /// - Throws: ``JobFrameError`` for anything but one whole answer (the worker's bug or damage).
    func takeAnswer() throws(JobFrameError) -> JobFrame? {
        let outbox = word(Self.outboxOffset)
        guard outbox.pointee.load(ordering: .acquiring) == Self.answerReady else { return nil }
        let bytes = copy(Self.answerArea, lengthAt: Self.answerLengthOffset)
        outbox.pointee.store(0, ordering: .releasing)
        guard let frame = try Self.onlyFrame(in: bytes), frame.answeredJobID != nil else {
            throw JobFrameError(message: "the job lane held something other than one answer")
        }
        return frame
    }

    /// What the outbox held when the sender stopped waiting there.
    enum StopWaiting: Equatable {
        /// Nothing came: an answer now goes by the socket.
        case nothing
        /// The answer is here (``takeAnswer()``).
        case ready
        /// The worker is copying the answer in: it is ready in a moment, unless the worker dies.
        case writing
    }

    /// The sender stops waiting here for `jobID`'s answer (it suspends, or it was answered by
    /// the socket).
    func stopWaiting(for jobID: UInt64) -> StopWaiting {
        let (exchanged, found) = word(Self.outboxOffset).pointee.compareExchange(
            expected: jobID, desired: 0, ordering: .acquiringAndReleasing)
        if exchanged { return .nothing }
        switch found {
        case Self.answerReady: return .ready
        case Self.answerWriting: return .writing
        default: return .nothing
        }
    }

    // MARK: - The worker's side (its job thread, except `answer`)

    /// Whether the sender said it spins for its answers.
    var clientSpins: Bool { word(Self.clientSpinsOffset).pointee.load(ordering: .relaxed) != 0 }

    /// What the inbox holds now.
    var inbox: Inbox { Inbox(rawValue: word(Self.inboxOffset).pointee.load(ordering: .acquiring)) ?? .taken }

    /// The worker will look at the lane until it disarms it: a sender may post. True when it is
    /// armed (now or already).
    @discardableResult
    func arm() -> Bool {
        let inbox = word(Self.inboxOffset)
        var current = inbox.pointee.load(ordering: .relaxed)
        while current == Inbox.asleep.rawValue || current == Inbox.taken.rawValue {
            let (exchanged, found) = inbox.pointee.compareExchange(
                expected: current, desired: Inbox.polling.rawValue, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = found
        }
        // Polling, writing or posted: armed. Anything else is the sender's damage: leave it unarmed.
        return current == Inbox.polling.rawValue || current == Inbox.writing.rawValue || current == Inbox.posted.rawValue
    }

    /// The posted request, if one is posted; the inbox is then `taken` either way.
    /// - Throws: ``JobFrameError`` for anything but one whole request (the sender's bug or damage).
    func takeRequest() throws(JobFrameError) -> JobRequestFrame? {
        let inbox = word(Self.inboxOffset)
        guard inbox.pointee.load(ordering: .acquiring) == Inbox.posted.rawValue else { return nil }
        let bytes = copy(Self.requestArea, lengthAt: Self.requestLengthOffset)
        inbox.pointee.store(Inbox.taken.rawValue, ordering: .releasing)
        guard case .request(let request)? = try Self.onlyFrame(in: bytes) else {
            throw JobFrameError(message: "the job lane held something other than one request")
        }
        return request
    }

    /// The worker is about to sleep: it stops looking, unless a request is posted or being
    /// written, which it must take first. Returns what the inbox held if it could not.
    func disarm() -> Inbox {
        let (exchanged, found) = word(Self.inboxOffset).pointee.compareExchange(
            expected: Inbox.polling.rawValue, desired: Inbox.asleep.rawValue, ordering: .acquiringAndReleasing)
        return exchanged ? .asleep : Inbox(rawValue: found) ?? .asleep
    }

    /// Puts `answer` (a result or an error) here if its sender waits for it here and it fits;
    /// false: send it by the socket. Any thread; encoded only when the sender waits, which under
    /// load it never does.
    func answer(_ answer: JobFrame) -> Bool {
        guard let jobID = answer.answeredJobID, jobID != 0, jobID < Self.answerWriting,
            word(Self.outboxOffset).pointee.load(ordering: .relaxed) == jobID
        else { return false }
        var frame = ByteBufferAllocator().buffer(capacity: 64)
        answer.write(to: &frame)
        guard frame.readableBytes <= Self.answerArea.count else { return false }
        let outbox = word(Self.outboxOffset)
        guard outbox.pointee.compareExchange(expected: jobID, desired: Self.answerWriting, ordering: .acquiringAndReleasing).exchanged
        else { return false }
        copy(frame, into: Self.answerArea, lengthAt: Self.answerLengthOffset)
        outbox.pointee.store(Self.answerReady, ordering: .releasing)
        return true
    }

    // MARK: - The areas

    /// Copies `frame` into `area` and stores its length (the caller then publishes it).
    private func copy(_ frame: ByteBuffer, into area: Range<Int>, lengthAt offset: Int) {
        frame.withUnsafeReadableBytes { bytes in
            guard let from = bytes.baseAddress else { return }
            (mapping.base + area.lowerBound).copyMemory(from: from, byteCount: bytes.count)
        }
        word(offset).pointee.store(UInt64(frame.readableBytes), ordering: .relaxed)
    }

    /// The bytes the other side published in `area`; none for a length past the area (its bug
    /// or damage), which then fails to decode.
    private func copy(_ area: Range<Int>, lengthAt offset: Int) -> ByteBuffer {
        let length = Int(word(offset).pointee.load(ordering: .relaxed))
        var bytes = ByteBuffer()
        if length <= area.count { bytes.writeBytes(UnsafeRawBufferPointer(start: mapping.base + area.lowerBound, count: length)) }
        return bytes
    }

    /// The frame `bytes` hold, nil unless they are exactly one whole frame: the lane holds one
    /// frame each way, decoded as the socket's are.
    private static func onlyFrame(in bytes: ByteBuffer) throws(JobFrameError) -> JobFrame? {
        var bytes = bytes
        guard let frame = try JobFrame.read(from: &bytes), bytes.readableBytes == 0 else { return nil }
        return frame
    }
}
