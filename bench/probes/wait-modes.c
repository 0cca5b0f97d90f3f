// A probe behind decision 0030 (not part of make bench): cc -O2 -o /tmp/wait-modes bench/probes/wait-modes.c && /tmp/wait-modes 50000
// 64-byte socketpair ping-pong: the receiver side blocking (the floor) against a sender that
// spins on recv(MSG_DONTWAIT), with or without sched_yield between tries.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static void pin(int cpu) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s); sched_setaffinity(0, sizeof s, &s); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }

// mode 0: blocking recv; 1: spin recv DONTWAIT; 2: spin + sched_yield. Worker: epoll_wait + recv (like ours).
static double run(int n, int a, int b, int mode, int epollWorker) {
    int fd[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, fd);
    char m[64] = {0};
    pid_t p = fork();
    if (p == 0) {
        pin(b); close(fd[0]);
        int ep = epoll_create1(0); struct epoll_event ev = {.events = EPOLLIN}; epoll_ctl(ep, EPOLL_CTL_ADD, fd[1], &ev);
        for (int i = 0; i < n; i++) {
            if (epollWorker) { struct epoll_event out; epoll_wait(ep, &out, 1, -1); recv(fd[1], m, 64, MSG_DONTWAIT); }
            else recv(fd[1], m, 64, MSG_WAITALL);
            send(fd[1], m, 64, 0);
        }
        _exit(0);
    }
    close(fd[1]); pin(a);
    double t0 = now();
    for (int i = 0; i < n; i++) {
        send(fd[0], m, 64, 0);
        if (mode == 0) recv(fd[0], m, 64, MSG_WAITALL);
        else for (;;) { if (recv(fd[0], m, 64, MSG_DONTWAIT) == 64) break; if (mode == 2) sched_yield(); }
    }
    double t = (now() - t0) / n;
    waitpid(p, NULL, 0); close(fd[0]);
    return t;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 50000;
    for (int r = 0; r < 3; r++) {
        printf("same: block %.2f, spin+yield %.2f, block/epoll-worker %.2f, spin+yield/epoll-worker %.2f | cross: block %.2f, spin %.2f, spin/epoll-worker %.2f, spin+yield/epoll-worker %.2f\n",
            run(n, 0, 0, 0, 0), run(n, 0, 0, 2, 0), run(n, 0, 0, 0, 1), run(n, 0, 0, 2, 1),
            run(n / 4, 0, 1, 0, 0), run(n / 4, 0, 1, 1, 0), run(n / 4, 0, 1, 1, 1), run(n / 4, 0, 1, 2, 1));
        fflush(stdout);
    }
}
