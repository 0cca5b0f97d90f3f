// A probe behind decision 0030 (not part of make bench): cc -O2 -o /tmp/futex-lane bench/probes/futex-lane.c && /tmp/futex-lane 100000
// Round trip of a 64-byte message between two processes: socketpair vs shared memory + futex.
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pin(int cpu) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s); sched_setaffinity(0, sizeof s, &s); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static long fx(_Atomic uint32_t *w, int op, uint32_t v) { return syscall(SYS_futex, w, op, v, NULL, NULL, 0); }

struct lane { _Atomic uint32_t seq; char pad[60]; char msg[64]; };
struct shm { struct lane to, back; };

static void put(struct lane *l, const char *m, uint32_t seq) {
    memcpy(l->msg, m, 64);
    atomic_store_explicit(&l->seq, seq, memory_order_release);
    fx(&l->seq, FUTEX_WAKE, 1);
}
static void take(struct lane *l, char *m, uint32_t seq) {
    while (atomic_load_explicit(&l->seq, memory_order_acquire) != seq) fx(&l->seq, FUTEX_WAIT, seq - 1);
    memcpy(m, l->msg, 64);
}

static double run_futex(int n, int a, int b) {
    struct shm *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(s, 0, sizeof *s);
    pid_t p = fork();
    char m[64] = {0};
    if (p == 0) { pin(b); for (uint32_t i = 1; i <= (uint32_t)n; i++) { take(&s->to, m, i); put(&s->back, m, i); } _exit(0); }
    pin(a);
    double t0 = now();
    for (uint32_t i = 1; i <= (uint32_t)n; i++) { put(&s->to, m, i); take(&s->back, m, i); }
    double t = (now() - t0) / n;
    waitpid(p, NULL, 0);
    munmap(s, sizeof *s);
    return t;
}

static double run_socket(int n, int a, int b) {
    int fd[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, fd);
    char m[64] = {0};
    pid_t p = fork();
    if (p == 0) { pin(b); close(fd[0]); for (int i = 0; i < n; i++) { recv(fd[1], m, 64, MSG_WAITALL); send(fd[1], m, 64, 0); } _exit(0); }
    close(fd[1]); pin(a);
    double t0 = now();
    for (int i = 0; i < n; i++) { send(fd[0], m, 64, 0); recv(fd[0], m, 64, MSG_WAITALL); }
    double t = (now() - t0) / n;
    waitpid(p, NULL, 0); close(fd[0]);
    return t;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    for (int r = 0; r < 3; r++) {
        printf("same CPU: socket %.2f us, futex %.2f us | cross: socket %.2f us, futex %.2f us\n",
            run_socket(n, 0, 0), run_futex(n, 0, 0), run_socket(n / 4, 0, 1), run_futex(n / 4, 0, 1));
        fflush(stdout);
    }
}
