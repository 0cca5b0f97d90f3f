#if canImport(Glibc)
import Glibc
#endif

/// A pool's flight recording, read back: the frames of its ring file (and of the recording
/// before it, when the pool restarted with another size), oldest first. Reading never
/// disturbs a recorder that is writing; ``reload()`` picks up the frames written since.
public final class FlightRecording: @unchecked Sendable {
    // @unchecked: every stored property is a `let` or only changed by `reload()`, which callers
    // (the replay console's loop) serialize; the frames themselves are values.

    public let pool: String
    private let directory: String
    private var rings: [Ring] = []
    /// Every frame, oldest first: which ring it is in, and where.
    public private(set) var frames: [Entry] = []

    public struct Entry: Hashable, Sendable {
        public var sequence: UInt64
        /// Seconds since the epoch.
        public var time: Double
        /// The frame's payload bytes.
        public var length: Int
        var ring: Int
        /// Where the frame is in its ring, and in which chunk read of it at which offset.
        var offset: Int
        var chunk: Int
        var at: Int
    }

    /// The recording of pool `pool` on this host (running, stopped or killed).
    /// - Throws: ``FlightRecordingError`` when there is none, naming where it was looked for.
    public convenience init(pool: String) throws(FlightRecordingError) {
        try self.init(pool: pool, directory: StateDirectory.path(pool: pool))
    }

    init(pool: String, directory: String) throws(FlightRecordingError) {
        self.pool = pool
        self.directory = directory
        try reload()
        if frames.isEmpty {
            throw FlightRecordingError("pool '\(pool)' has no flight recording in \(directory) (recordFor off, or it never ran here)")
        }
    }

    /// Reads the files again (a running pool has written newer frames since).
    public func reload() throws(FlightRecordingError) {
        var rings: [Ring] = []
        var failures: [String] = []
        for name in [FlightRecordingFile.previousFileName, FlightRecordingFile.fileName] {
            let path = "\(directory)/\(name)"
            guard Posix.isRegularFile(path) else { continue }
            do {
                rings.append(try Ring(path: path))
            } catch {
                failures.append("\(path): \(error)")
            }
        }
        if rings.isEmpty, let failure = failures.first { throw FlightRecordingError(failure) }
        var frames: [Entry] = []
        for (index, ring) in rings.enumerated() {
            // The previous recording only up to where this one starts.
            let start = frames.last?.time ?? -Double.infinity
            for frame in ring.frames where frame.time > start {
                frames.append(Entry(sequence: frame.sequence, time: frame.time, length: frame.length, ring: index, offset: frame.offset, chunk: frame.chunk, at: frame.at))
            }
        }
        // An unchanged second points at the whole frame before it: those whose whole frame the
        // ring has already overwritten cannot be shown.
        if let first = frames.firstIndex(where: { $0.length > 0 }) { frames.removeFirst(first) } else { frames = [] }
        self.rings = rings
        self.frames = frames
    }

    /// The frame at `index` of ``frames``, decoded. An unchanged second is the whole frame
    /// before it, at its own time, with no events.
    public func frame(_ index: Int) throws(FlightRecordingError) -> FlightFrame {
        guard frames.indices.contains(index) else { throw FlightRecordingError("no frame \(index) in the recording of '\(pool)'") }
        guard frames[index].length > 0 else {
            // `reload` starts the list at a whole frame, so one is found.
            guard let whole = frames[..<index].lastIndex(where: { $0.length > 0 }) else {
                throw FlightRecordingError("frame \(frames[index].sequence) of '\(pool)' repeats a frame the ring no longer holds")
            }
            var frame = try self.frame(whole)
            let time = frames[index].time
            frame.snapshot.takenAt = time
            frame.snapshot.pool.uptimeSeconds = time - frame.snapshot.pool.startedAt
            frame.events = []
            frame.droppedEvents = 0
            return frame
        }
        let entry = frames[index]
        let ring = rings[entry.ring]
        do {
            return try FlightFrame.decode(ring.payload(chunk: entry.chunk, at: entry.at, length: entry.length), takenAt: entry.time, name: ring.name)
        } catch {
            throw FlightRecordingError("\(ring.path): frame \(entry.sequence): \(error)")
        }
    }

    /// Only the events of the frame at `index` (cheaper than the whole frame).
    public func events(_ index: Int) throws(FlightRecordingError) -> [PoolEventRecord] {
        guard frames.indices.contains(index) else { throw FlightRecordingError("no frame \(index) in the recording of '\(pool)'") }
        let entry = frames[index]
        if entry.length == 0 { return [] }
        let ring = rings[entry.ring]
        do {
            return try FlightFrame.decodeEvents(ring.payload(chunk: entry.chunk, at: entry.at, length: entry.length), takenAt: entry.time)
        } catch {
            throw FlightRecordingError("\(ring.path): frame \(entry.sequence): \(error)")
        }
    }

    /// The index of the last frame taken at or before `time` (the first frame when `time` is
    /// earlier than the recording).
    public func index(at time: Double) -> Int {
        var low = 0
        var high = frames.count
        while low < high {
            let middle = (low + high) / 2
            if frames[middle].time <= time { low = middle + 1 } else { high = middle }
        }
        return max(0, low - 1)
    }

    /// One ring file, scanned: only the parts of it that were written (it is sparse until the
    /// ring has wrapped), read whole, then searched for frames.
    struct Ring {
        let path: String
        let name: String
        let capacity: Int
        /// The written stretches of the ring: where each starts in the ring, and its bytes.
        let chunks: [(start: Int, bytes: [UInt8])]
        /// The whole frames of the run of consecutive sequence numbers ending at the newest,
        /// oldest first: where each is in the ring, and in which chunk at which offset.
        let frames: [(sequence: UInt64, time: Double, offset: Int, length: Int, chunk: Int, at: Int)]

        init(path: String) throws(FlightRecordingError) {
            self.path = path
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { throw FlightRecordingError("cannot open \(path): \(String(cString: strerror(errno)))") }
            defer { Glibc.close(fd) }
            var header = [UInt8](repeating: 0, count: FlightRecordingFile.headerSize)
            guard pread(fd, &header, header.count, 0) == header.count else {
                throw FlightRecordingError("\(path) is too short to be a flight recording")
            }
            func word(_ offset: Int) -> UInt64 { header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) } }
            guard word(0) == FlightRecordingFile.magic else { throw FlightRecordingError("\(path) is not a flight recording (bad magic)") }
            guard word(8) == FlightRecordingFile.version else {
                throw FlightRecordingError("\(path) is a version \(word(8)) flight recording; this build reads version \(FlightRecordingFile.version)")
            }
            let capacity = Int(clamping: word(24))
            guard word(16) == UInt64(FlightRecordingFile.headerSize), capacity <= FlightRecordingFile.maximumCapacity else {
                throw FlightRecordingError("\(path): header size \(word(16)) or capacity \(capacity) out of range")
            }
            self.capacity = capacity
            name = String(decoding: header[64..<128].prefix { $0 != 0 }, as: UTF8.self)
            chunks = Self.readWritten(fd, capacity: capacity)
            frames = Self.scan(chunks)
        }

        /// The ring's written stretches (`SEEK_DATA`/`SEEK_HOLE`; a file system without them
        /// reports the whole file as data). A ring cut short (a full disk) is read as far as it goes.
        private static func readWritten(_ fd: Int32, capacity: Int) -> [(start: Int, bytes: [UInt8])] {
            // Linux's values: Glibc exports them only under _GNU_SOURCE, which Swift's module does not set.
            let SEEK_DATA: Int32 = 3
            let SEEK_HOLE: Int32 = 4
            let base = FlightRecordingFile.headerSize
            var chunks: [(start: Int, bytes: [UInt8])] = []
            var position = base
            while position < base + capacity {
                let data = lseek(fd, off_t(position), SEEK_DATA)
                guard data >= 0 else { break }  // ENXIO: nothing written past here
                let hole = lseek(fd, data, SEEK_HOLE)
                let end = min(hole > data ? Int(hole) : base + capacity, base + capacity)
                guard Int(data) < end else { break }
                var bytes = [UInt8](repeating: 0, count: end - Int(data))
                let read = bytes.withUnsafeMutableBytes { raw -> Int in
                    var done = 0
                    while done < raw.count {
                        let n = pread(fd, raw.baseAddress! + done, raw.count - done, off_t(Int(data) + done))
                        if n < 0 && errno == EINTR { continue }
                        if n <= 0 { break }
                        done += n
                    }
                    return done
                }
                chunks.append((Int(data) - base, Array(bytes.prefix(read))))
                if read < bytes.count { break }
                position = end
            }
            return chunks
        }

        /// Every whole frame of the written stretches; then the consecutive run that ends at the newest.
        private static func scan(_ chunks: [(start: Int, bytes: [UInt8])]) -> [(sequence: UInt64, time: Double, offset: Int, length: Int, chunk: Int, at: Int)] {
            var found: [(sequence: UInt64, time: Double, offset: Int, length: Int, chunk: Int, at: Int)] = []
            for (index, chunk) in chunks.enumerated() {
                chunk.bytes.withUnsafeBytes { raw in
                    // Frames start 8-aligned in the ring; the chunk may start anywhere a page does.
                    var at = (8 - chunk.start % 8) % 8
                    while at + FlightRecordingFile.frameHeaderSize <= raw.count {
                        let first = raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)
                        let length = Int(first >> 32)
                        let size = FlightRecordingFile.frameSize(payload: length)
                        guard UInt32(truncatingIfNeeded: first) == FlightRecordingFile.frameMagic, at + size <= raw.count else {
                            at += 8
                            continue
                        }
                        let frame = UnsafeRawBufferPointer(rebasing: raw[at..<(at + size)])
                        let stored = raw.loadUnaligned(fromByteOffset: at + 24, as: UInt64.self)
                        guard FlightRecordingFile.checksum(frame, payloadLength: length) == stored else {
                            at += 8
                            continue
                        }
                        let sequence = raw.loadUnaligned(fromByteOffset: at + 8, as: UInt64.self)
                        let time = Double(raw.loadUnaligned(fromByteOffset: at + 16, as: UInt64.self)) / 1e9
                        found.append((sequence, time, chunk.start + at, length, index, at))
                        at += size
                    }
                }
            }
            found.sort { $0.sequence < $1.sequence }
            guard var start = found.indices.last else { return [] }
            while start > 0 && found[start - 1].sequence == found[start].sequence - 1 { start -= 1 }
            return Array(found[start...])
        }

        /// A frame's payload.
        func payload(chunk: Int, at: Int, length: Int) -> ArraySlice<UInt8> {
            let from = at + FlightRecordingFile.frameHeaderSize
            return chunks[chunk].bytes[from..<from + length]
        }
    }
}
