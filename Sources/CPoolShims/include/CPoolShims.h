// Small C helpers for what Swift cannot express on Linux.
// Never define _GNU_SOURCE here: it changes glibc's declarations and breaks the
// Glibc module import (found by a probe on the development machine); it lives only in shims.c.
#ifndef CPOOLSHIMS_H
#define CPOOLSHIMS_H

#include <stdint.h>
#include <sys/types.h>
#include <spawn.h>
#include <signal.h>

/// pidfd_open(2); returns the descriptor or -1 with errno set.
int pt_pidfd_open(pid_t pid);
/// pidfd_send_signal(2); returns 0 or -1 with errno set.
int pt_pidfd_send_signal(int pidfd, int sig);
/// waitid(P_PIDFD, pidfd, WEXITED | options): reaps the child.
/// On success returns the pid and fills code (CLD_EXITED, CLD_KILLED, CLD_DUMPED) and status;
/// returns 0 when WNOHANG was given and the child has not exited; -1 with errno on error.
int pt_waitid_pidfd(int pidfd, int options, int *code, int *status);
/// PIDFD_GET_INFO with PIDFD_INFO_EXIT (Linux 6.15): 1 with the wait status of the process
/// behind `pidfd` once it has been reaped, whoever reaped it; 0 before; -1 with errno when the
/// kernel cannot tell. `pid` gets its pid either way.
int pt_pidfd_reaped_status(int pidfd, int *wait_status, int *pid);
/// fork(2) for a single-threaded fork server: in the child, SIGCHLD back to its default and a
/// process group of its own. Returns as fork does.
pid_t pt_fork_worker(void);
/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+).
int pt_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);
/// The process environment (a C global, which Swift 6 refuses to read directly).
char **pt_environ(void);

/// One epoll event without the packed struct layout that Swift imports badly.
typedef struct { uint32_t events; uint64_t data; } pt_epoll_event;
int pt_epoll_create(void);
int pt_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int pt_epoll_wait(int epfd, pt_epoll_event *events, int max, int timeout_ms);
int pt_eventfd(void);
/// accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC): a GNU extension Glibc's module map hides.
int pt_accept_nonblocking(int fd);
/// Waits up to `timeout_ns` nanoseconds for `fd` to be readable (ppoll: finer than poll's
/// milliseconds). Returns 1 when readable or closed, 0 on timeout, -1 with errno on error.
int pt_poll_readable_ns(int fd, long long timeout_ns);

/// sendmsg of `bytes` with `count` descriptors (SCM_RIGHTS, at most 64), non-blocking, no
/// SIGPIPE; returns the bytes sent or -1 with errno.
long pt_send_with_fds(int socket, const void *bytes, size_t length, const int *fds, int count);
/// recvmsg into `buffer`, blocking unless `nonblocking`; the descriptors that came with it
/// (close-on-exec) go to `fds`, their count to `received` (beyond `capacity` they are closed).
/// Returns bytes or -1 with errno (EAGAIN when nonblocking and nothing is there).
long pt_receive_with_fds(int socket, void *buffer, size_t length, int *fds, int capacity, int *received, int nonblocking);
/// memfd_create with MFD_CLOEXEC (glibc declares it only under _GNU_SOURCE): an anonymous file
/// for memory shared with another process by passing the descriptor. -1 with errno on failure.
int pt_memfd_create(const char *name);
/// ppoll on two descriptors for input, `timeout_ns` < 0 waiting without limit: 0 on timeout,
/// -1 on error (errno set), else bit 1 for `first` readable, bit 2 for `second`.
int pt_poll_two_ns(int first, int second, long long timeout_ns);
/// The eventfd libdispatch signals when a job is queued on its main queue (thread-bound: it is
/// drained only by whoever calls `pt_dispatch_main_queue_drain` on the main thread).
int pt_dispatch_main_queue_handle(void);
/// Runs the jobs queued on libdispatch's main queue, on the calling (main) thread.
void pt_dispatch_main_queue_drain(void);

extern const int PT_EPOLL_CTL_ADD;
extern const int PT_EPOLL_CTL_DEL;
extern const int PT_EPOLL_CTL_MOD;
extern const uint32_t PT_EPOLLOUT;
extern const uint32_t PT_EPOLLIN;
extern const uint32_t PT_EPOLLHUP;
extern const uint32_t PT_EPOLLERR;
extern const uint32_t PT_EPOLLRDHUP;

/// Routes `sig` to a C handler that writes the signal number as one byte to `fd`
/// (the self-pipe trick: async-signal-safe, works whichever thread takes the signal).
int pt_signal_route_to_fd(int sig, int fd);
/// Restores the default disposition of `sig`.
int pt_signal_default(int sig);
/// Ignores `sig` (SIGPIPE: writes to a closed peer must fail with EPIPE, not kill us).
int pt_signal_ignore(int sig);

/// pipe2(O_CLOEXEC | O_NONBLOCK).
int pt_pipe_cloexec_nonblock(int fds[2]);
/// pipe2(O_CLOEXEC): a pipe whose child end a spawned program writes to blocking.
int pt_pipe_cloexec(int fds[2]);

/// prctl(PR_SET_NAME): the name `ps -o comm` and `top` show (15 bytes at most).
int pt_set_thread_name(const char *name);
/// Whether the calling thread is the process's main thread (its thread id is the process id).
int pt_is_main_thread(void);
/// prctl(PR_SET_PTRACER, pid): under Yama's ptrace_scope 1 lets `pid` and its descendants
/// (the watcher's backtrace tool) attach to this process. Harmless elsewhere.
int pt_allow_tracer(int pid);

/// Steers new connections of `fd`'s SO_REUSEPORT group to the sockets at `indices` (their
/// positions in the kernel's group, in the order they started listening), at random: a classic
/// BPF program attached with SO_ATTACH_REUSEPORT_CBPF. Returns 0, or -1 with errno.
int pt_reuseport_steer(int fd, const uint32_t *indices, int count);

/// The crash guard: on a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE,
/// which is how a Swift runtime trap ends a process) it writes the registered terminal-restore
/// bytes to stdout, puts back the terminal modes saved on stdin, unlinks the registered files,
/// then lets the process die of the signal: a fault goes on to whatever handled it before
/// (Swift's backtracer, or the default), a signal sent by kill or abort takes the default action
/// at once. Everything it does is async-signal-safe.
/// Installs the handlers (once); later calls only update what they do.
int pt_crash_guard_install(void);
/// Saves stdin's terminal modes now: call it before taking the terminal over.
void pt_crash_guard_save_terminal(void);
/// The bytes that leave full-screen mode (from terminfo); NULL forgets them and the saved modes.
void pt_crash_guard_set_restore_bytes(const char *restore_bytes);
/// Adds a path to remove on a crash (at most 16, up to 255 bytes each; a directory is removed
/// if empty by then; the last added goes first); returns its slot, or -1.
int pt_crash_guard_add_path(const char *path);
/// Forgets the path in `slot` (it was removed in the normal way).
void pt_crash_guard_remove_path(int slot);

/// Tells ThreadSanitizer that a lock at `address` was taken / is about to be released; no-ops
/// unless this file is built with -fsanitize=thread (`make sanitize`). Swift's
/// Synchronization.Mutex locks with futex calls inside the uninstrumented standard library, so
/// without these ThreadSanitizer sees no order between two holders of one lock.
void pt_tsan_acquire(const void *address);
void pt_tsan_release(const void *address);

#endif
