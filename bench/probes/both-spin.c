// A probe behind decision 0030 (not part of make bench): cc -O2 -o /tmp/both-spin bench/probes/both-spin.c && /tmp/both-spin 50000
// 64-byte socketpair ping-pong with the worker spinning too (recv MSG_DONTWAIT + sched_yield), not only the sender.
#define _GNU_SOURCE
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
static void spinrecv(int fd, char *m) { for (;;) { if (recv(fd, m, 64, MSG_DONTWAIT) == 64) return; sched_yield(); } }
// worker: 0 blocking recv, 1 epoll, 2 spin+yield. sender: 0 blocking, 2 spin+yield
static double run(int n, int a, int b, int sender, int worker) {
    int fd[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, fd); char m[64] = {0};
    pid_t p = fork();
    if (p == 0) { pin(b); close(fd[0]);
        int ep = epoll_create1(0); struct epoll_event ev = {.events = EPOLLIN}; epoll_ctl(ep, EPOLL_CTL_ADD, fd[1], &ev);
        for (int i = 0; i < n; i++) {
            if (worker == 0) recv(fd[1], m, 64, MSG_WAITALL);
            else if (worker == 1) { struct epoll_event o; epoll_wait(ep, &o, 1, -1); recv(fd[1], m, 64, MSG_DONTWAIT); }
            else spinrecv(fd[1], m);
            send(fd[1], m, 64, 0); }
        _exit(0); }
    close(fd[1]); pin(a); double t0 = now();
    for (int i = 0; i < n; i++) { send(fd[0], m, 64, 0); if (sender == 0) recv(fd[0], m, 64, MSG_WAITALL); else spinrecv(fd[0], m); }
    double t = (now() - t0) / n; waitpid(p, NULL, 0); close(fd[0]); return t;
}
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 50000;
    for (int r = 0; r < 3; r++) printf("same: floor %.2f, spin/epoll %.2f, spin/spin %.2f | cross: floor %.2f, spin/epoll %.2f, spin/spin %.2f\n",
        run(n,0,0,0,0), run(n,0,0,2,1), run(n,0,0,2,2), run(n/4,0,1,0,0), run(n/4,0,1,2,1), run(n/4,0,1,2,2));
}
