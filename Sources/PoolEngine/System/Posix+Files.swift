import CPoolShims

#if canImport(Glibc)
import Glibc
#endif

/// Shared memory, directories, file locks and /proc: the file-system side of `Posix`.
extension Posix {
    /// A mapping of a shared-memory object; unmapped with `unmap()`.
    struct Mapping: @unchecked Sendable {
        // @unchecked: a raw pointer into shared memory; every access goes through atomics.
        let base: UnsafeMutableRawPointer
        let size: Int

        func unmap() { _ = munmap(base, size) }
    }

    static var userID: uid_t { getuid() }

    /// What is at a shared-memory name: its owner, and whether it is a symbolic link; nil when
    /// nothing is (`lstat`, so a link is reported, never followed).
    static func sharedMemoryEntry(name: String) -> (owner: uid_t, isLink: Bool)? {
        var info = stat()
        guard lstat("/dev/shm\(name)", &info) == 0 else { return nil }
        return (info.st_uid, (info.st_mode & S_IFMT) == S_IFLNK)
    }

    /// Creates (exclusively) and maps a shared-memory object of `size` bytes, mode 0600.
    /// `O_EXCL` never follows a symbolic link at the name: a planted one fails with EEXIST.
    static func createSharedMemory(name: String, size: Int) throws -> Mapping {
        let fd = try check("shm_open(O_CREAT|O_EXCL)", context: name) {
            shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600)
        }
        defer { close(fd) }
        // The umask may have removed bits; the mode must be exactly 0600.
        try check("fchmod", context: name) { fchmod(fd, 0o600) }
        try check("ftruncate", context: name) { ftruncate(fd, off_t(size)) }
        return try map(fd, size: size, writable: true, name: name)
    }

    /// Creates and maps an anonymous shared file of `size` bytes (memfd): memory another process
    /// shares by being passed the descriptor, with no name to remove, so none is left behind
    /// whoever dies. Returns the mapping and the descriptor (close-on-exec; the caller closes it).
    static func createAnonymousSharedMemory(name: String, size: Int) throws -> (Mapping, FD) {
        let fd = try check("memfd_create", context: name) { pt_memfd_create(name) }
        do {
            try check("ftruncate", context: name) { ftruncate(fd, off_t(size)) }
            return (try map(fd, size: size, writable: true, name: name), fd)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Maps a shared file another process passed, read-write, if it is exactly `size` bytes
    /// (a smaller one would fault on access).
    static func mapPassedSharedMemory(_ fd: FD, size: Int, name: String) throws -> Mapping {
        let actual = try fileSize(fd)
        guard actual == size else {
            throw SystemCallError(call: "fstat", errno: EINVAL, context: "\(name) is \(actual) bytes, not \(size)")
        }
        return try map(fd, size: size, writable: true, name: name)
    }

    /// Opens and maps an existing shared-memory object; its size is read from the object.
    static func openSharedMemory(name: String, writable: Bool) throws -> Mapping {
        let fd = try check("shm_open", context: name) {
            shm_open(name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0)
        }
        defer { close(fd) }
        var info = stat()
        try check("fstat", context: name) { fstat(fd, &info) }
        return try map(fd, size: Int(info.st_size), writable: writable, name: name)
    }

    private static func map(_ fd: FD, size: Int, writable: Bool, name: String) throws -> Mapping {
        let protection = writable ? (PROT_READ | PROT_WRITE) : PROT_READ
        guard let base = mmap(nil, size, protection, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            throw SystemCallError(call: "mmap", errno: errno, context: name)
        }
        return Mapping(base: base, size: size)
    }

    /// Removes a shared-memory name; a missing one is not an error.
    static func unlinkSharedMemory(name: String) {
        _ = shm_unlink(name)
    }

    /// Mode bits (permissions) and owner of a shared-memory object.
    static func sharedMemoryOwnerAndMode(name: String) throws -> (owner: uid_t, mode: mode_t) {
        try ownerAndMode(path: "/dev/shm\(name)")
    }

    /// The size of an open file, in bytes.
    static func fileSize(_ fd: FD) throws -> Int {
        var info = stat()
        try check("fstat") { fstat(fd, &info) }
        return Int(info.st_size)
    }

    static func ownerAndMode(path: String) throws -> (owner: uid_t, mode: mode_t) {
        var info = stat()
        try check("stat", context: path) { stat(path, &info) }
        return (info.st_uid, info.st_mode & 0o7777)
    }

    /// What ``readRegularFile(_:limit:timeoutNanoseconds:)`` found.
    enum RegularFileRead {
        case bytes([UInt8])
        /// Not a regular file: a device, a FIFO, a socket or a directory (its kind, in words).
        case notRegular(String)
        /// More than `limit` bytes.
        case tooLarge(Int)
        /// Still reading when the time was up (a file on a hung network mount).
        case tooSlow
    }

    /// Reads a regular file of at most `limit` bytes within a time limit, refusing anything
    /// else before reading a byte: `/dev/zero`, a FIFO or a huge file would otherwise block or
    /// grow without end. Opened non-blocking, so even opening a FIFO does not wait for a writer.
    static func readRegularFile(_ path: String, limit: Int, timeoutNanoseconds: UInt64) throws -> RegularFileRead {
        let fd = try check("open", context: path) { Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }
        defer { close(fd) }
        var info = stat()
        try check("fstat", context: path) { fstat(fd, &info) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return .notRegular("a directory")
        case S_IFCHR: return .notRegular("a character device")
        case S_IFBLK: return .notRegular("a block device")
        case S_IFIFO: return .notRegular("a FIFO")
        case S_IFSOCK: return .notRegular("a socket")
        default: return .notRegular("not a regular file")
        }
        if Int(info.st_size) > limit { return .tooLarge(Int(info.st_size)) }
        let deadline = monotonicNanoseconds() &+ timeoutNanoseconds
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            // A file that grows while it is read is held to the same limit.
            let n = try chunk.withUnsafeMutableBytes { try read(fd, into: $0) } ?? 0
            if n == 0 { return .bytes(bytes) }
            bytes += chunk[0..<n]
            if bytes.count > limit { return .tooLarge(bytes.count) }
            if monotonicNanoseconds() > deadline { return .tooSlow }
        }
    }

    static func isDirectory(path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates a directory with `mode`; an existing one is left as it is.
    static func makeDirectory(_ path: String, mode: mode_t) throws {
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw SystemCallError(call: "mkdir", errno: errno, context: path)
        }
    }

    static func setMode(_ path: String, _ mode: mode_t) throws {
        try check("chmod", context: path) { chmod(path, mode) }
    }

    static func removeFile(_ path: String) { _ = unlink(path) }

    /// Writes a file whole: into a temporary file beside it, then renamed over it, so a reader
    /// sees the old content or the new, never a part.
    static func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t) throws {
        let temporary = "\(path).\(processID).tmp"
        let fd = try check("open", context: temporary) { Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        var written = 0
        var failure: Int32 = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                failure = errno
                break
            }
            written += n
        }
        close(fd)
        if failure != 0 {
            removeFile(temporary)
            throw SystemCallError(call: "write", errno: failure, context: temporary)
        }
        do {
            try check("rename", context: path) { Glibc.rename(temporary, path) }
        } catch {
            removeFile(temporary)
            throw error
        }
    }

    /// The process's working directory ("/" should it be unreadable: deleted under us).
    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `path` is a regular file (not following a symbolic link).
    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }

    /// Opens a file for appending (created 0600), close-on-exec.
    static func openForAppending(_ path: String) throws -> FD {
        try check("open", context: path) { open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600) }
    }

    static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw SystemCallError(call: "opendir", errno: errno, context: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func removeDirectory(_ path: String) { _ = rmdir(path) }

    /// Opens (creating) a file and takes an exclusive, non-blocking `flock`; nil when another holds it.
    static func lockFile(_ path: String) throws -> FD? {
        let fd = try check("open", context: path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let error = errno
            close(fd)
            if error == EWOULDBLOCK { return nil }
            throw SystemCallError(call: "flock", errno: error, context: path)
        }
        return fd
    }

    /// Takes and releases a shared `flock` without waiting; false when someone holds it exclusively.
    static func tryLockShared(_ fd: FD) -> Bool {
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else { return false }
        flock(fd, LOCK_UN)
        return true
    }

    /// Replaces a file's content through an open descriptor.
    static func rewrite(_ fd: FD, _ text: String) throws {
        let bytes = Array(text.utf8)
        try check("ftruncate") { ftruncate(fd, 0) }
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        if written != bytes.count { throw SystemCallError(call: "pwrite", errno: errno) }
    }

    /// Whether a process with this pid exists (a zombie counts as gone).
    static func processExists(_ pid: pid_t) -> Bool {
        guard pid > 0, Glibc.kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let stat = try? readFile("/proc/\(pid)/stat") else { return false }
        guard let close = stat.lastIndex(of: UInt8(ascii: ")")), close + 2 < stat.count else { return false }
        return stat[close + 2] != UInt8(ascii: "Z")
    }

    /// Reads a /proc file through an open descriptor from offset 0 (a fresh view each time).
    static func preadAll(_ fd: FD, into buffer: inout [UInt8]) -> Int {
        buffer.withUnsafeMutableBytes { raw in
            while true {
                let n = pread(fd, raw.baseAddress, raw.count, 0)
                if n >= 0 { return n }
                if errno != EINTR { return -1 }
            }
        }
    }

    static func openReadOnly(_ path: String) -> FD? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        return fd >= 0 ? fd : nil
    }

    /// Connects a stream socket to a Unix-domain path. A non-blocking one does not wait for a
    /// full backlog: that is EAGAIN, an error here.
    static func connectUnixSocket(_ path: String, nonBlocking: Bool = false) throws -> FD {
        var address = try unixSocketAddress(path, call: "connect")
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = try check("socket(AF_UNIX)") { socket(AF_UNIX, type, 0) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
        }
        if result != 0 {
            let error = errno
            close(fd)
            throw SystemCallError(call: "connect", errno: error, context: path)
        }
        return fd
    }

    /// The address of a Unix-domain socket at `path`; a path too long for `sun_path` is
    /// ENAMETOOLONG from `call`, the call it was meant for.
    static func unixSocketAddress(_ path: String, call: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SystemCallError(call: call, errno: ENAMETOOLONG, context: path)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return address
    }

    static let socketLevel = SOL_SOCKET
    static let peerCredentialsOption = SO_PEERCRED

    static var clockTicksPerSecond: Int { sysconf(Int32(_SC_CLK_TCK)) }
    static var pageSize: Int { sysconf(Int32(_SC_PAGESIZE)) }
}

/// `struct ucred` as SO_PEERCRED fills it (pid, uid, gid: three 32-bit words on Linux).
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
