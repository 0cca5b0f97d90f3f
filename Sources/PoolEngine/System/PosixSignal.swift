#if canImport(Glibc)
import Glibc
#endif

/// Signal numbers, so that code outside `System/` needs no libc import.
enum PosixSignal {
    static let kill = SIGKILL
    static let terminate = SIGTERM
    static let interrupt = SIGINT
    static let hangUp = SIGHUP
    static let user1 = SIGUSR1
    static let user2 = SIGUSR2
    static let pipe = SIGPIPE
    static let child = SIGCHLD
}
