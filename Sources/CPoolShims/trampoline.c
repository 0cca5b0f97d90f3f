#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>

// The exec trampoline for programs run as workers (`command:` in pool.yaml). The watcher
// spawns its own executable with `--pooltop-exec` and the command; this runs before any Swift
// code (a constructor: no runtime threads, nothing to undo) and does what posix_spawn cannot:
// LISTEN_PID must be the program's own pid (sd_listen_fds(3)), known only once the process
// exists; then the working directory, the credentials, a parent-death signal, and execvp.
// Whatever fails is written to the exec-status descriptor, which the watcher reads: it closes
// without a byte when the exec succeeds (close-on-exec), so the watcher learns both outcomes.

static void pt_trampoline_fail(int status_fd, const char *what, const char *subject, int error) {
    char message[768];
    int length = snprintf(message, sizeof message, "cannot %s%s%s: %s", what, subject ? " " : "", subject ? subject : "",
                          strerror(error));
    if (length > 0 && status_fd >= 0) {
        ssize_t ignored = write(status_fd, message, (size_t)length < sizeof message ? (size_t)length : sizeof message - 1);
        (void)ignored;
    }
    _exit(127);
}

static long pt_trampoline_number(const char *name) {
    const char *text = getenv(name);
    if (!text || !*text) return -1;
    char *end = NULL;
    long value = strtol(text, &end, 10);
    return (end && *end == 0) ? value : -1;
}

__attribute__((constructor)) static void pt_exec_trampoline(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc < 3 || strcmp(argv[1], "--pooltop-exec") != 0) return;
    long status_fd = pt_trampoline_number("POOLTOP_EXEC_STATUS_FD");
    if (status_fd < 0) return;
    long parent = pt_trampoline_number("POOLTOP_EXEC_PARENT");
    long uid = pt_trampoline_number("POOLTOP_EXEC_UID");
    long gid = pt_trampoline_number("POOLTOP_EXEC_GID");
    const char *user = getenv("POOLTOP_EXEC_USER");
    char *user_copy = user ? strdup(user) : NULL;
    const char *directory = getenv("POOLTOP_EXEC_DIR");
    char *directory_copy = directory ? strdup(directory) : NULL;
    unsetenv("POOLTOP_EXEC_STATUS_FD");
    unsetenv("POOLTOP_EXEC_PARENT");
    unsetenv("POOLTOP_EXEC_UID");
    unsetenv("POOLTOP_EXEC_GID");
    unsetenv("POOLTOP_EXEC_USER");
    unsetenv("POOLTOP_EXEC_DIR");
    int fd = (int)status_fd;
    fcntl(fd, F_SETFD, FD_CLOEXEC);

    if (directory_copy && chdir(directory_copy) != 0) pt_trampoline_fail(fd, "enter the working directory", directory_copy, errno);
    if (gid >= 0) {
        if (user_copy ? initgroups(user_copy, (gid_t)gid) != 0 : setgroups(0, NULL) != 0)
            pt_trampoline_fail(fd, "set the supplementary groups of", user_copy ? user_copy : "the program", errno);
        if (setgid((gid_t)gid) != 0) pt_trampoline_fail(fd, "switch to group id", getenv("POOLTOP_EXEC_GID"), errno);
    }
    if (uid >= 0 && setuid((uid_t)uid) != 0) pt_trampoline_fail(fd, "switch to user", user_copy, errno);
    // After the credentials change, which clears it. The watcher's monitor thread spawned us and
    // lives as long as the pool: if the watcher is killed, the program must not outlive it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (parent > 0 && getppid() != (pid_t)parent) _exit(127);
    if (getenv("LISTEN_FDS")) {
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        setenv("LISTEN_PID", pid, 1);
    }
    execvp(argv[2], argv + 2);
    pt_trampoline_fail(fd, "execute", argv[2], errno);
}
