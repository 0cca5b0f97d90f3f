#if canImport(Glibc)
import Glibc
#endif

/// The flight recorder's ring file, `flight.rec` in the pool's state directory.
///
/// A header page, then a data ring of ``capacity`` bytes that frames fill in turn and wrap
/// around. Each frame is written whole with one `pwrite` and carries its own sequence number,
/// time and checksum; nothing else in the file is updated per frame. A watcher killed at any
/// moment (SIGKILL) therefore leaves every frame it finished writing readable: the reader
/// finds them by scanning and keeps the run of consecutive sequence numbers that ends at the
/// newest, so a frame torn by the wrap-around (or by a crash of the host mid-write) is never
/// shown. A new run of the pool continues the ring where the last one stopped.
///
/// Layout (all little-endian): header words magic "PTFLIGHT", version, header size, capacity,
/// created (ns since the epoch), frame interval (ns), recordFor (ns), then the pool's name
/// (64 bytes) at 64. A frame at an 8-aligned offset of the ring: magic "PTFR" (u32), payload
/// length (u32), sequence, time (ns since the epoch), FNV-1a checksum of those and the
/// payload, then the payload (``FlightFrame``'s encoding), padded to 8 bytes. A payload of no
/// bytes records a second in which nothing changed: it repeats the whole frame before it.
final class FlightRecordingFile {
    static let fileName = "flight.rec"
    /// The previous recording, kept when a pool restarts with a ring of another size.
    static let previousFileName = "flight.rec.1"
    static let magic: UInt64 = 0x5448_4749_4C46_5450  // "PTFLIGHT" read as bytes
    static let version: UInt64 = 1
    static let headerSize = 4096
    static let frameMagic: UInt32 = 0x5246_5450  // "PTFR" read as bytes
    static let frameHeaderSize = 32
    /// The ring's bounds whatever `recordFor` and the pool's size ask.
    static let minimumCapacity = 256 << 10
    static let maximumCapacity = 256 << 20

    let path: String
    let capacity: Int
    private let fd: Int32
    /// Where the next frame goes in the ring, and its sequence number.
    private var head = 0
    private(set) var nextSequence: UInt64 = 1

    /// The ring's size for a pool: `recordFor` seconds of frames of the size a pool of this many
    /// groups and slots writes (measured: ~70 bytes a busy worker, see docs/recording.md), with
    /// room for a second's events and a quarter to spare.
    static func capacity(recordFor: Duration, groups: Int, slots: Int) -> Int {
        let seconds = max(1, Int(recordFor.seconds.rounded(.up)))
        let frame = frameHeaderSize + 64 + 48 * groups + 80 * slots + 1024
        let wanted = seconds.multipliedReportingOverflow(by: frame + frame / 4)
        return min(max(wanted.overflow ? maximumCapacity : wanted.partialValue, minimumCapacity), maximumCapacity)
    }

    /// Opens the pool's ring in `directory`, continuing a recording of the same capacity (a
    /// recording with another is kept as ``previousFileName``, replacing the one before).
    init(directory: String, pool: String, capacity: Int, recordFor: Duration) throws {
        let path = "\(directory)/\(Self.fileName)"
        self.path = path
        self.capacity = capacity
        // try?: a ring that cannot be read (none yet, another size, damaged) is replaced below.
        if let existing = try? FlightRecording.Ring(path: path), existing.capacity == capacity, existing.name == pool {
            fd = try Posix.check("open", context: path) { open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW) }
            if let newest = existing.frames.last {
                head = newest.offset + Self.frameSize(payload: newest.length)
                nextSequence = newest.sequence + 1
            }
            return
        }
        if Posix.isRegularFile(path) { _ = rename(path, "\(directory)/\(Self.previousFileName)") }
        fd = try Posix.check("open", context: path) { open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600) }
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        let words: [UInt64] = [
            Self.magic, Self.version, UInt64(Self.headerSize), UInt64(capacity), Posix.wallClockNanoseconds(), 1_000_000_000,
            UInt64(clamping: recordFor.nanoseconds),
        ]
        for (index, word) in words.enumerated() { Self.store(word, in: &header, at: index * 8) }
        for (index, byte) in pool.utf8.prefix(63).enumerated() { header[64 + index] = byte }
        do {
            try Self.writeAll(fd, header, at: 0)
            // The ring's length is set now and is sparse: blocks are used as frames fill them.
            try Posix.check("ftruncate", context: path) { ftruncate(fd, off_t(Self.headerSize + capacity)) }
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit { Glibc.close(fd) }

    static func frameSize(payload: Int) -> Int { (frameHeaderSize + payload + 7) & ~7 }

    /// Writes one frame; false when it cannot (bigger than half the ring, or the write failed:
    /// a full disk costs the recording, never the pool).
    @discardableResult
    func append(_ payload: [UInt8], at nanoseconds: UInt64) -> Bool {
        let size = Self.frameSize(payload: payload.count)
        guard size <= capacity / 2, payload.count < Int(UInt32.max) else { return false }
        if head + size > capacity { head = 0 }
        var frame = [UInt8](repeating: 0, count: size)
        Self.store(UInt64(Self.frameMagic) | UInt64(payload.count) << 32, in: &frame, at: 0)
        Self.store(nextSequence, in: &frame, at: 8)
        Self.store(nanoseconds, in: &frame, at: 16)
        frame.replaceSubrange(Self.frameHeaderSize..<Self.frameHeaderSize + payload.count, with: payload)
        let checksum = frame.withUnsafeBytes { Self.checksum($0, payloadLength: payload.count) }
        Self.store(checksum, in: &frame, at: 24)
        do {
            try Self.writeAll(fd, frame, at: Self.headerSize + head)
        } catch {
            return false
        }
        head += size
        nextSequence += 1
        return true
    }

    /// FNV-1a over the frame's length, sequence and time words and its payload, eight bytes a
    /// step (the reader checks every frame of a ring of up to 256 MiB when a replay opens).
    static func checksum(_ raw: UnsafeRawBufferPointer, payloadLength: Int) -> UInt64 {
        do {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            func mix(_ word: UInt64) { hash = (hash ^ word) &* 0x0000_0100_0000_01b3 }
            mix(UInt64(payloadLength))
            mix(raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            mix(raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            let end = frameHeaderSize + payloadLength
            var offset = frameHeaderSize
            while offset + 8 <= end {
                mix(raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                offset += 8
            }
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while offset < end {
                tail |= UInt64(raw[offset]) << shift
                shift += 8
                offset += 1
            }
            mix(tail)
            return hash
        }
    }

    static func store(_ word: UInt64, in bytes: inout [UInt8], at offset: Int) {
        for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(index))) }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset + done)) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw SystemCallError(call: "pwrite", errno: written < 0 ? errno : ENOSPC) }
            done += written
        }
    }
}
