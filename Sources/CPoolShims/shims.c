#define _GNU_SOURCE
#include "CPoolShims.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdlib.h>
#include <linux/filter.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

int pt_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int pt_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int pt_waitid_pidfd(int pidfd, int options, int *code, int *status) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | options) != 0) return -1;
    if (info.si_pid == 0) return 0;
    *code = info.si_code;
    *status = info.si_status;
    return info.si_pid;
}

// struct pidfd_info and PIDFD_GET_INFO (Linux 6.13; the exit status from 6.15), which this
// system's kernel headers predate: the layout of the first 64 bytes (PIDFD_INFO_SIZE_VER0).
struct pt_pidfd_info {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
    uint32_t coredump_mask, spare;
};
#define PT_PIDFD_GET_INFO _IOWR(0xFF, 11, struct pt_pidfd_info)
#define PT_PIDFD_INFO_EXIT (1ULL << 3)

int pt_pidfd_reaped_status(int pidfd, int *wait_status, int *pid) {
    struct pt_pidfd_info info;
    memset(&info, 0, sizeof(info));
    info.mask = PT_PIDFD_INFO_EXIT;
    if (ioctl(pidfd, PT_PIDFD_GET_INFO, &info) != 0) return -1;
    *pid = (int)info.pid;
    if (!(info.mask & PT_PIDFD_INFO_EXIT)) return 0;
    *wait_status = info.exit_code;
    return 1;
}

pid_t pt_fork_worker(void) {
    pid_t pid = fork();
    if (pid == 0) {
        // The fork server has the kernel reap its children; the worker's own children are its
        // to wait for, as in a spawned worker. A group of its own, as a spawned worker gets.
        signal(SIGCHLD, SIG_DFL);
        setpgid(0, 0);
    }
    return pid;
}

int pt_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

char **pt_environ(void) { return environ; }

const int PT_EPOLL_CTL_ADD = EPOLL_CTL_ADD;
const int PT_EPOLL_CTL_DEL = EPOLL_CTL_DEL;
const uint32_t PT_EPOLLIN = EPOLLIN;
const uint32_t PT_EPOLLOUT = EPOLLOUT;
const int PT_EPOLL_CTL_MOD = EPOLL_CTL_MOD;
const uint32_t PT_EPOLLHUP = EPOLLHUP;
const uint32_t PT_EPOLLERR = EPOLLERR;
const uint32_t PT_EPOLLRDHUP = EPOLLRDHUP;

int pt_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int pt_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int pt_epoll_wait(int epfd, pt_epoll_event *events, int max, int timeout_ms) {
    struct epoll_event raw[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, raw, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        events[i].events = raw[i].events;
        events[i].data = raw[i].data.u64;
    }
    return n;
}

int pt_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int pt_poll_readable_ns(int fd, long long timeout_ns) {
    struct pollfd entry = { .fd = fd, .events = POLLIN, .revents = 0 };
    if (timeout_ns < 0) timeout_ns = 0;
    struct timespec timeout = { .tv_sec = timeout_ns / 1000000000LL, .tv_nsec = timeout_ns % 1000000000LL };
    int n = ppoll(&entry, 1, &timeout, NULL);
    return n > 0 ? 1 : n;
}

int pt_poll_two_ns(int first, int second, long long timeout_ns) {
    struct pollfd entries[2] = {{ .fd = first, .events = POLLIN, .revents = 0 }, { .fd = second, .events = POLLIN, .revents = 0 }};
    struct timespec timeout = { .tv_sec = timeout_ns / 1000000000LL, .tv_nsec = timeout_ns % 1000000000LL };
    int n = ppoll(entries, 2, timeout_ns < 0 ? NULL : &timeout, NULL);
    if (n <= 0) return n;
    return (entries[0].revents != 0 ? 1 : 0) | (entries[1].revents != 0 ? 2 : 0);
}

// libdispatch's entry points for a run loop that drains the main queue (CoreFoundation's on
// Linux uses them): the eventfd it signals when a job is queued on the main queue, and the
// drain. Declared here: libdispatch installs no header for them.
extern int _dispatch_get_main_queue_handle_4CF(void);
extern void _dispatch_main_queue_callback_4CF(void *message);

int pt_dispatch_main_queue_handle(void) { return _dispatch_get_main_queue_handle_4CF(); }

void pt_dispatch_main_queue_drain(void) {
    uint64_t count;
    // The eventfd is non-blocking: reset it (libdispatch signals it again for later jobs).
    (void)read(_dispatch_get_main_queue_handle_4CF(), &count, sizeof count);
    _dispatch_main_queue_callback_4CF(NULL);
}

static volatile sig_atomic_t signal_fds[65];

static void route_handler(int sig) {
    int saved = errno;
    if (sig > 0 && sig < 65) {
        int fd = signal_fds[sig];
        if (fd >= 0) {
            unsigned char byte = (unsigned char)sig;
            // A full pipe only loses a repeated signal number, which is harmless.
            ssize_t ignored = write(fd, &byte, 1);
            (void)ignored;
        }
    }
    errno = saved;
}

int pt_signal_route_to_fd(int sig, int fd) {
    if (sig <= 0 || sig >= 65) { errno = EINVAL; return -1; }
    signal_fds[sig] = fd;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = route_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    return sigaction(sig, &action, NULL);
}

int pt_signal_default(int sig) {
    if (sig > 0 && sig < 65) signal_fds[sig] = -1;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    return sigaction(sig, &action, NULL);
}

int pt_signal_ignore(int sig) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = SIG_IGN;
    sigemptyset(&action.sa_mask);
    return sigaction(sig, &action, NULL);
}

int pt_set_thread_name(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }

int pt_is_main_thread(void) { return syscall(SYS_gettid) == getpid(); }

int pt_pipe_cloexec_nonblock(int fds[2]) { return pipe2(fds, O_CLOEXEC | O_NONBLOCK); }
int pt_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

// MARK: - Crash guard

static const int pt_fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE};
#define PT_FATAL_COUNT (sizeof(pt_fatal_signals) / sizeof(pt_fatal_signals[0]))
static struct sigaction pt_previous_actions[PT_FATAL_COUNT];
static volatile sig_atomic_t pt_guard_installed = 0;

static struct termios pt_saved_termios;
static volatile sig_atomic_t pt_have_termios = 0;
static char pt_restore_bytes[256];
static volatile sig_atomic_t pt_restore_length = 0;

#define PT_GUARD_PATHS 16
static char pt_guard_paths[PT_GUARD_PATHS][256];
// Per slot: 0 free, 1 being written, 2 in use. Several pools of one process add and remove
// paths from different threads, so a slot is claimed with a compare-and-swap (lock-free on an
// int, so the signal handler may read it too) before its path is written.
static int pt_guard_path_used[PT_GUARD_PATHS];

static void pt_crash_handler(int sig, siginfo_t *info, void *context) {
    (void)context;
    if (pt_restore_length > 0) {
        ssize_t ignored = write(STDOUT_FILENO, pt_restore_bytes, (size_t)pt_restore_length);
        (void)ignored;
    }
    if (pt_have_termios) tcsetattr(STDIN_FILENO, TCSANOW, &pt_saved_termios);
    // Last registered first: files before the directory that holds them.
    for (int i = PT_GUARD_PATHS - 1; i >= 0; i--) {
        if (__atomic_load_n(&pt_guard_path_used[i], __ATOMIC_ACQUIRE) != 2) continue;
        if (unlink(pt_guard_paths[i]) != 0 && errno == EISDIR) rmdir(pt_guard_paths[i]);
    }
    if (info == NULL || info->si_code <= 0) {
        // Sent (kill, raise, abort), not a fault: die of it now, as the sender meant. A
        // backtracer would print and return, and nothing would raise it again.
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    // A fault: hand it to the previous handler (Swift's backtracer prints where it happened),
    // which meets it when the faulting instruction runs again on return.
    for (size_t i = 0; i < PT_FATAL_COUNT; i++) {
        if (pt_fatal_signals[i] == sig) sigaction(sig, &pt_previous_actions[i], NULL);
    }
}

int pt_crash_guard_install(void) {
    if (pt_guard_installed) return 0;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = pt_crash_handler;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < PT_FATAL_COUNT; i++) {
        if (sigaction(pt_fatal_signals[i], &action, &pt_previous_actions[i]) != 0) return -1;
    }
    pt_guard_installed = 1;
    return 0;
}

void pt_crash_guard_save_terminal(void) {
    pt_have_termios = tcgetattr(STDIN_FILENO, &pt_saved_termios) == 0;
}

void pt_crash_guard_set_restore_bytes(const char *restore_bytes) {
    if (restore_bytes == NULL) {
        pt_restore_length = 0;
        pt_have_termios = 0;
        return;
    }
    size_t length = strlen(restore_bytes);
    if (length >= sizeof(pt_restore_bytes)) length = sizeof(pt_restore_bytes) - 1;
    pt_restore_length = 0;
    memcpy(pt_restore_bytes, restore_bytes, length);
    pt_restore_length = (sig_atomic_t)length;
}

int pt_crash_guard_add_path(const char *path) {
    size_t length = strlen(path);
    if (length >= sizeof(pt_guard_paths[0])) return -1;
    for (int i = 0; i < PT_GUARD_PATHS; i++) {
        int expected = 0;
        if (!__atomic_compare_exchange_n(&pt_guard_path_used[i], &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) continue;
        memcpy(pt_guard_paths[i], path, length + 1);
        __atomic_store_n(&pt_guard_path_used[i], 2, __ATOMIC_RELEASE);
        return i;
    }
    return -1;
}

void pt_crash_guard_remove_path(int slot) {
    if (slot >= 0 && slot < PT_GUARD_PATHS) __atomic_store_n(&pt_guard_path_used[slot], 0, __ATOMIC_RELEASE);
}

// MARK: - SO_REUSEPORT steering

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

int pt_reuseport_steer(int fd, const uint32_t *indices, int count) {
    if (count < 1 || count > 1000) {
        errno = EINVAL;
        return -1;
    }
    // A = random; A %= count; then a jump table from 0...count-1 to the socket indices.
    int length = 2 + 2 * count + 1;
    struct sock_filter *program = calloc((size_t)length, sizeof(struct sock_filter));
    if (program == NULL) return -1;
    int at = 0;
    program[at++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_RANDOM));
    program[at++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, (uint32_t)count);
    for (int i = 0; i < count; i++) {
        program[at++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)i, 0, 1);
        program[at++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, indices[i]);
    }
    program[at++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, indices[0]);
    struct sock_fprog filter = {.len = (unsigned short)length, .filter = program};
    int result = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &filter, sizeof(filter));
    int saved = errno;
    free(program);
    errno = saved;
    return result;
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PT_THREAD_SANITIZER 1
void __tsan_acquire(void *address);
void __tsan_release(void *address);
#endif
#endif

#ifdef PT_THREAD_SANITIZER
void pt_tsan_acquire(const void *address) { __tsan_acquire((void *)address); }
void pt_tsan_release(const void *address) { __tsan_release((void *)address); }
#else
void pt_tsan_acquire(const void *address) { (void)address; }
void pt_tsan_release(const void *address) { (void)address; }
#endif

int pt_accept_nonblocking(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

int pt_allow_tracer(int pid) {
    return prctl(PR_SET_PTRACER, (unsigned long)pid, 0, 0, 0);
}

// Descriptors passed over a Unix socket (SCM_RIGHTS): the CMSG macros are C's, so the
// message is built here. A standby process gets its slot's listening sockets this way.
#define PT_MAX_PASSED_FDS 64

long pt_send_with_fds(int socket, const void *bytes, size_t length, const int *fds, int count) {
    if (count < 0 || count > PT_MAX_PASSED_FDS) { errno = EINVAL; return -1; }
    struct iovec vector = { .iov_base = (void *)bytes, .iov_len = length };
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1 };
    char control[CMSG_SPACE(sizeof(int) * PT_MAX_PASSED_FDS)];
    if (count > 0) {
        memset(control, 0, sizeof(control));
        message.msg_control = control;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * count);
    }
    ssize_t sent;
    do { sent = sendmsg(socket, &message, MSG_NOSIGNAL | MSG_DONTWAIT); } while (sent < 0 && errno == EINTR);
    return sent;
}

long pt_receive_with_fds(int socket, void *buffer, size_t length, int *fds, int capacity, int *received, int nonblocking) {
    *received = 0;
    struct iovec vector = { .iov_base = buffer, .iov_len = length };
    char control[CMSG_SPACE(sizeof(int) * PT_MAX_PASSED_FDS)];
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
    ssize_t n;
    // Close-on-exec until the receiver places them: nothing it spawns meanwhile inherits them.
    do { n = recvmsg(socket, &message, MSG_CMSG_CLOEXEC | (nonblocking ? MSG_DONTWAIT : 0)); } while (n < 0 && errno == EINTR);
    if (n < 0) return n;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *passed = (int *)CMSG_DATA(header);
        for (int index = 0; index < count; index++) {
            // More than the caller has room for are closed rather than leaked.
            if (*received < capacity) fds[(*received)++] = passed[index];
            else close(passed[index]);
        }
    }
    return n;
}

int pt_memfd_create(const char *name) { return (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC); }
