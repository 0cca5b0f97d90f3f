#if canImport(Glibc)
import Glibc
#endif
import CPoolShims

/// Every libc call the engine makes goes through here: each wrapper calls, reads
/// `errno` at once, retries `EINTR` where that is safe (never for `close`), and
/// throws ``SystemCallError``. No logging and no policy live in this layer.
enum Posix {
    typealias FD = Int32

    @discardableResult
    static func check(_ call: String, context: String? = nil, _ body: () -> Int32) throws -> Int32 {
        while true {
            let result = body()
            if result >= 0 { return result }
            let error = errno
            if error == EINTR { continue }
            throw SystemCallError(call: call, errno: error, context: context)
        }
    }

    static func close(_ fd: FD) {
        // close(2) must not be retried on EINTR on Linux: the descriptor is gone either way.
        _ = Glibc.close(fd)
    }

    static func socketPair() throws -> (FD, FD) {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        try check("socketpair") { Glibc.socketpair(AF_UNIX, type, 0, &fds) }
        return (fds[0], fds[1])
    }

    static func pipe() throws -> (read: FD, write: FD) {
        var fds: [Int32] = [-1, -1]
        try check("pipe2") { pt_pipe_cloexec_nonblock(&fds) }
        return (fds[0], fds[1])
    }

    /// Raises the soft limit on open descriptors to the hard limit, as servers do: the soft
    /// default (1024) is what a few hundred connections, workers and listeners exhaust. Returns
    /// the limits before and after.
    @discardableResult
    static func raiseDescriptorLimit() throws -> (before: UInt64, after: UInt64) {
        var limit = rlimit()
        try check("getrlimit(RLIMIT_NOFILE)") { getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
        let before = UInt64(limit.rlim_cur)
        guard limit.rlim_cur < limit.rlim_max else { return (before, before) }
        limit.rlim_cur = limit.rlim_max
        try check("setrlimit(RLIMIT_NOFILE)") { setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
        return (before, UInt64(limit.rlim_max))
    }

    /// How many descriptor numbers are free above the lowest free one, up to the soft limit:
    /// a cheap lower bound on the descriptors this process may still open, since the kernel
    /// hands out the lowest free number first (one `fcntl` and one `close`).
    static func descriptorHeadroom() -> Int {
        let probe = Glibc.fcntl(0, F_DUPFD_CLOEXEC, 0)
        guard probe >= 0 else { return 0 }
        Glibc.close(probe)
        return max(0, Int(clamping: descriptorLimit()) - Int(probe))
    }

    /// The soft limit on open descriptors.
    static func descriptorLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        return UInt64(limit.rlim_cur)
    }

    /// How long a blocking `recv` on the socket waits before it fails with EAGAIN. The kernel
    /// counts it in timer-wheel ticks (jiffies), so it rounds up to one tick at least; in
    /// exchange the wait arms no high-resolution timer.
    static func setReceiveTimeout(_ fd: FD, microseconds: Int) throws {
        var tv = timeval(tv_sec: microseconds / 1_000_000, tv_usec: microseconds % 1_000_000)
        try check("setsockopt(SO_RCVTIMEO)", context: "fd \(fd)") {
            Glibc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// Clears O_NONBLOCK: calls that must not wait then say so per call (`MSG_DONTWAIT`).
    static func setBlocking(_ fd: FD) throws {
        let flags = try check("fcntl(F_GETFL)", context: "fd \(fd)") { Glibc.fcntl(fd, F_GETFL) }
        try check("fcntl(F_SETFL)", context: "fd \(fd)") { Glibc.fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
    }

    /// Sets O_NONBLOCK: for a descriptor an epoll loop serves.
    static func setNonBlocking(_ fd: FD) throws {
        let flags = try check("fcntl(F_GETFL)", context: "fd \(fd)") { Glibc.fcntl(fd, F_GETFL) }
        try check("fcntl(F_SETFL)", context: "fd \(fd)") { Glibc.fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Accepts one connection, non-blocking and close-on-exec; nil when none waits. A
    /// connection its client gave up on before it was accepted (ECONNABORTED) is skipped.
    static func acceptNonBlocking(_ listener: FD) throws -> FD? {
        while true {
            let fd = pt_accept_nonblocking(listener)
            if fd >= 0 { return fd }
            let error = errno
            if error == EINTR || error == ECONNABORTED { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return nil }
            throw SystemCallError(call: "accept4", errno: error, context: "fd \(listener)")
        }
    }

    /// Shuts a socket's sending side: the peer reads end of stream once what was sent is read.
    static func shutdownWrite(_ fd: FD) {
        // Fails only on a socket already shut or gone, which is what was asked.
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Writes all of `bytes` to a socket; `MSG_NOSIGNAL` turns a closed peer into EPIPE instead of SIGPIPE.
    static func sendAll(_ fd: FD, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = try bytes.withUnsafeBytes { raw -> Int in
                while true {
                    let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                    if n >= 0 { return n }
                    let error = errno
                    if error == EINTR { continue }
                    throw SystemCallError(call: "send", errno: error, context: "fd \(fd)")
                }
            }
            offset += written
        }
    }

    /// Reads what is available; returns 0 at end of stream and nil when the call would block.
    static func receive(_ fd: FD, into buffer: UnsafeMutableRawBufferPointer, nonBlocking: Bool) throws -> Int? {
        let flags = nonBlocking ? Int32(MSG_DONTWAIT) : 0
        while true {
            let n = Glibc.recv(fd, buffer.baseAddress, buffer.count, flags)
            if n >= 0 { return n }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return nil }
            throw SystemCallError(call: "recv", errno: error, context: "fd \(fd)")
        }
    }

    /// Sends `bytes` with `descriptors` attached (SCM_RIGHTS, with the first byte) without
    /// blocking; returns how many bytes went (the descriptors went with them if any did).
    static func send(_ fd: FD, _ bytes: [UInt8], passing descriptors: [FD]) throws -> Int {
        let n = bytes.withUnsafeBytes { raw in
            descriptors.withUnsafeBufferPointer { fds in
                pt_send_with_fds(fd, raw.baseAddress, raw.count, fds.baseAddress, Int32(fds.count))
            }
        }
        guard n >= 0 else { throw SystemCallError(call: "sendmsg", errno: errno, context: "fd \(fd), \(descriptors.count) descriptors") }
        return n
    }

    /// Receives into `buffer`, blocking, and appends to `descriptors` those that came with the
    /// bytes (close-on-exec; at most 64 a call). Returns the bytes read, 0 at end of file.
    static func receive(_ fd: FD, into buffer: UnsafeMutableRawBufferPointer, descriptors: inout [FD]) throws -> Int {
        // Safe: blocking, so never nil.
        try receive(fd, into: buffer, descriptors: &descriptors, nonBlocking: false)!
    }

    /// As ``receive(_:into:descriptors:)``, without blocking when `nonBlocking`: nil when
    /// nothing is there.
    static func receive(_ fd: FD, into buffer: UnsafeMutableRawBufferPointer, descriptors: inout [FD], nonBlocking: Bool) throws -> Int? {
        var passed = [FD](repeating: -1, count: 64)
        var count: Int32 = 0
        let n = passed.withUnsafeMutableBufferPointer { fds in
            pt_receive_with_fds(fd, buffer.baseAddress, buffer.count, fds.baseAddress, Int32(fds.count), &count, nonBlocking ? 1 : 0)
        }
        guard n >= 0 else {
            let error = errno
            if nonBlocking && (error == EAGAIN || error == EWOULDBLOCK) { return nil }
            throw SystemCallError(call: "recvmsg", errno: error, context: "fd \(fd)")
        }
        descriptors += passed.prefix(Int(count))
        return n
    }

    static func read(_ fd: FD, into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return nil }
            throw SystemCallError(call: "read", errno: error, context: "fd \(fd)")
        }
    }

    static func write(_ fd: FD, _ bytes: UnsafeRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.write(fd, bytes.baseAddress, bytes.count)
            if n >= 0 { return n }
            let error = errno
            if error == EINTR { continue }
            throw SystemCallError(call: "write", errno: error, context: "fd \(fd)")
        }
    }

    /// Waits until `fd` is readable or the timeout passes; returns false on timeout.
    static func pollReadable(_ fd: FD, timeoutMilliseconds: Int32) throws -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let n = try check("poll", context: "fd \(fd)") { Glibc.poll(&entry, 1, timeoutMilliseconds) }
        return n > 0
    }

    /// Waits up to `timeoutNanoseconds` (ppoll) until `fd` is readable or hung up; false on
    /// timeout. An interrupted wait returns true, so the caller looks and waits again.
    static func pollReadable(_ fd: FD, timeoutNanoseconds: Int64) throws -> Bool {
        let n = pt_poll_readable_ns(fd, timeoutNanoseconds)
        if n >= 0 { return n > 0 }
        let error = errno
        if error == EINTR { return true }
        throw SystemCallError(call: "ppoll", errno: error, context: "fd \(fd)")
    }

    /// Sends what a non-blocking socket takes of `bytes`: the count, or nil when it takes none
    /// now. `MSG_NOSIGNAL` turns a closed peer into EPIPE instead of SIGPIPE.
    static func sendNonBlocking(_ fd: FD, _ bytes: UnsafeRawBufferPointer) throws -> Int? {
        while true {
            let n = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            if n >= 0 { return n }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return nil }
            throw SystemCallError(call: "send", errno: error, context: "fd \(fd)")
        }
    }

    /// dup2(2): `fd` also at `target` (closing what was there), without close-on-exec.
    static func duplicate(_ fd: FD, to target: FD) throws {
        _ = try check("dup2", context: "fd \(fd) to \(target)") { Glibc.dup2(fd, target) }
    }

    static func duplicateAbove(_ fd: FD, minimum: FD) throws -> FD {
        try check("fcntl(F_DUPFD_CLOEXEC)", context: "fd \(fd)") { Glibc.fcntl(fd, F_DUPFD_CLOEXEC, minimum) }
    }

    static func clearCloseOnExec(_ fd: FD) throws {
        let flags = try check("fcntl(F_GETFD)") { Glibc.fcntl(fd, F_GETFD) }
        try check("fcntl(F_SETFD)") { Glibc.fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) }
    }

    static func pidfdOpen(_ pid: pid_t) throws -> FD {
        try check("pidfd_open", context: "pid \(pid)") { pt_pidfd_open(pid) }
    }

    /// Sends `signal` through a pidfd, which cannot hit a recycled pid. ESRCH (already gone) is not an error.
    static func pidfdSignal(_ pidfd: FD, _ signal: Int32) throws {
        if pt_pidfd_send_signal(pidfd, signal) == 0 { return }
        let error = errno
        if error == ESRCH { return }
        throw SystemCallError(call: "pidfd_send_signal", errno: error, context: "signal \(signal)")
    }

    /// Reaps an exited child through its pidfd; nil when it has not exited yet. For a process
    /// that is not our child (a fork server's, decision 0028) it reads the status the kernel
    /// keeps once its parent has reaped it; nil until then (`waiting` does not wait for that).
    static func reap(pidfd: FD, waiting: Bool = false) throws -> TerminationStatus? {
        var code: Int32 = 0
        var status: Int32 = 0
        let pid = pt_waitid_pidfd(pidfd, waiting ? 0 : WNOHANG, &code, &status)
        if pid < 0 {
            let error = errno
            guard error == ECHILD else { throw SystemCallError(call: "waitid(P_PIDFD)", errno: error) }
            guard let wait = try waitStatusOfNonChild(pidfd) else { return nil }
            // A wait status (wait(2)): the low 7 bits are the signal, 0 for an exit whose code
            // is the next byte.
            let signal = wait & 0x7f
            return signal == 0 ? .exited((wait >> 8) & 0xff) : .signaled(signal)
        } else if pid == 0 {
            return nil
        }
        if code == CLD_EXITED { return .exited(status) }
        return .signaled(status)
    }

    /// The wait status of an ended process that is not our child: the kernel's once its parent
    /// has reaped it (`PIDFD_INFO_EXIT`, Linux 6.15); before that, its zombie's own record
    /// (field 52 of /proc/PID/stat), taken only if the process was still unreaped after the
    /// read, so that the pid could not yet name another process. Nil while it has not ended.
    private static func waitStatusOfNonChild(_ pidfd: FD) throws -> Int32? {
        var wait: Int32 = 0
        var pid: Int32 = 0
        func reaped() throws -> Bool {
            try check("ioctl(PIDFD_GET_INFO)") { pt_pidfd_reaped_status(pidfd, &wait, &pid) } == 1
        }
        if try reaped() { return wait }
        let zombie = ProcStat(process: "\(pid)")
        if try reaped() { return wait }
        guard let zombie, zombie.hasEnded else { return nil }
        return zombie.exitCode
    }

    /// Whether the kernel gives the exit status of a process that is not our child through its
    /// pidfd (`PIDFD_INFO_EXIT`, Linux 6.15): read from `uname`, since asking a live process's
    /// pidfd cannot tell.
    static let pidfdReportsExitStatus: Bool = {
        var names = utsname()
        guard uname(&names) == 0 else { return false }
        let release = withUnsafeBytes(of: &names.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return false }
        return (numbers[0], numbers[1]) >= (6, 15)
    }()

    /// Forks this (single-threaded) process for a worker: see `pt_fork_worker`. Returns 0 in the
    /// child, the child's pid in the parent.
    static func forkWorker() throws -> pid_t {
        try check("fork") { pt_fork_worker() }
    }

    /// Ends writing on a socket: its peer reads end of file while both ends stay open.
    static func shutdownWriting(_ fd: FD) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Waits until every child of this process has ended, for a process whose children the
    /// kernel reaps (SIGCHLD ignored): `waitpid` then returns only when none is left.
    static func waitForAllChildren() {
        var status: Int32 = 0
        while Glibc.waitpid(-1, &status, 0) >= 0 || errno == EINTR {}
    }

    /// Kills a child of ours and waits for it: only for a child not yet reaped (so its pid
    /// cannot name another process) that nothing else watches.
    static func killAndReap(_ pid: pid_t) {
        _ = Glibc.kill(pid, SIGKILL)
        var status: Int32 = 0
        while Glibc.waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    static func kill(_ pid: pid_t, _ signal: Int32) throws {
        try check("kill", context: "pid \(pid)") { Glibc.kill(pid, signal) }
    }

    static func executablePath() throws -> String {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buffer.withUnsafeMutableBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { Glibc.readlink("/proc/self/exe", $0.baseAddress!, $0.count - 1) }
        }
        if n < 0 { throw SystemCallError(call: "readlink", errno: errno, context: "/proc/self/exe") }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    static func environment() -> [String] {
        var result: [String] = []
        guard var cursor = pt_environ() else { return result }
        while let entry = cursor.pointee {
            result.append(String(cString: entry))
            cursor += 1
        }
        return result
    }

    /// Reads a whole file (also /proc files, whose size is not known in advance).
    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = try check("open", context: path) { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try read(fd, into: $0) } ?? 0
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    static func getenv(_ name: String) -> String? {
        guard let value = Glibc.getenv(name) else { return nil }
        return String(cString: value)
    }

    /// The host's name, as `uname -n` gives it; "localhost" if the call fails.
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard Glibc.gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func unsetenv(_ name: String) {
        _ = Glibc.unsetenv(name)
    }

    static func setenv(_ name: String, _ value: String) {
        _ = Glibc.setenv(name, value, 1)
    }

    /// Lets another thread or process run on this CPU (one waiting for it, say).
    static func yieldProcessor() { sched_yield() }

    /// Milliseconds-resolution-free monotonic time in nanoseconds (CLOCK_MONOTONIC is shared by all processes).
    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func wallClockNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// The wall clock as of the last timer tick (a few milliseconds old at most): what a
    /// display of "since when" needs, at a fifth of a precise read's cost here (4.9 against
    /// 22.5 ns in this VM), which a job worker pays several times per job (decision 0026).
    static func coarseWallClockNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func wallClockSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func ignoreSignal(_ signal: Int32) { _ = pt_signal_ignore(signal) }

    static func routeSignal(_ signal: Int32, toDescriptor fd: FD) throws {
        try check("sigaction", context: "signal \(signal)") { pt_signal_route_to_fd(signal, fd) }
    }

    static func restoreDefaultSignal(_ signal: Int32) { _ = pt_signal_default(signal) }

    /// `_exit`: no atexit handlers, no buffered output flushed (for a worker whose watcher is gone).
    static func exitImmediately(_ code: Int32) -> Never { Glibc._exit(code) }

    /// Flushes stdio buffers, so a worker's own prints are not lost, then `_exit`: the atexit
    /// handlers and static destructors `exit` would run cost a worker about 0.4 ms of CPU on
    /// its way out and do nothing a process about to vanish needs (32 workers stopping
    /// together on 2 CPUs wait for each other's).
    static func exitProcess(_ code: Int32) -> Never {
        _ = Glibc.fflush(nil)
        Glibc._exit(code)
    }

    static func sleep(milliseconds: UInt32) { _ = Glibc.usleep(milliseconds * 1000) }
    static func sleep(microseconds: UInt32) { _ = Glibc.usleep(microseconds) }

    /// Waits until one of `fds` is readable; returns the readable ones (empty on timeout).
    static func pollReadable(_ fds: [FD], timeoutMilliseconds: Int32) throws -> [FD] {
        var entries = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let n = try check("poll") { Glibc.poll(&entries, nfds_t(entries.count), timeoutMilliseconds) }
        if n == 0 { return [] }
        return entries.filter { $0.revents != 0 }.map(\.fd)
    }

    static func setThreadName(_ name: String) { _ = pt_set_thread_name(name) }

    /// Names the process: what `ps`, `top` and `pgrep` show (15 bytes at most). From any
    /// thread: `/proc/self/comm` is the main thread's whichever thread writes it (proc(5)),
    /// where `prctl` would name the calling thread, in a worker a pooled thread that later
    /// runs any task.
    static func setProcessName(_ name: String) {
        let fd = Glibc.open("/proc/self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }  // No /proc: the name is cosmetic.
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        Glibc.close(fd)
    }

    /// Rewrites argument `index` of this process's command line (what `/proc/PID/cmdline`, `ps`
    /// and `top` show) in place, if `text` fits in the bytes it had; the rest is zeroed. Swift's
    /// `CommandLine.arguments` keeps the original. False when it does not fit.
    @discardableResult
    static func replaceArgument(_ index: Int, with text: String) -> Bool {
        guard index < Int(CommandLine.argc), let argument = CommandLine.unsafeArgv[index] else { return false }
        let capacity = strlen(argument)
        let bytes = Array(text.utf8)
        guard bytes.count <= capacity else { return false }
        let raw = UnsafeMutableRawPointer(argument)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
        bytes.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return true
    }

    static var isMainThread: Bool { pt_is_main_thread() != 0 }

    static var processID: pid_t { Glibc.getpid() }

    /// The threads of this process (`num_threads` in `/proc/self/stat`); 0 when unreadable.
    static var threadCount: Int { ProcStat(process: "self")?.threads ?? 0 }

    /// Processors online now (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
    static var onlineProcessorCount: Int { max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1) }
}
