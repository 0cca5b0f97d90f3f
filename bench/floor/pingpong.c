/* The floor for job round trips: two processes exchanging 64-byte frames over a Unix socket
 * pair, with no framework at all. Usage: pingpong rtt N [same|cross] | pingpong pipe N WINDOW
 * `same` pins both processes to CPU 0, `cross` the parent to CPU 0 and the child to CPU 1;
 * without it the scheduler places them. Prints one JSON object: round-trip median and p99 in
 * microseconds, or frames per second. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { FRAME = 64 };

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int read_full(int fd, char *buffer, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t n = read(fd, buffer + done, size - done);
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    return 0;
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity");
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int pipelined = strcmp(argv[1], "pipe") == 0;
    long count = atol(argv[2]);
    long window = pipelined && argc > 3 ? atol(argv[3]) : 1;
    const char *placement = !pipelined && argc > 3 ? argv[3] : "any";
    int same = strcmp(placement, "same") == 0, cross = strcmp(placement, "cross") == 0;
    if (same || cross) pin(0);
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
        if (cross) pin(1);
        close(fds[0]);
        char frame[FRAME * 64];
        for (;;) {
            ssize_t n = read(fds[1], frame, sizeof frame);
            if (n <= 0) _exit(0);
            /* Echo whole frames as they come: the peer reads exactly what it sent. */
            if (write(fds[1], frame, (size_t)n) != n) _exit(1);
        }
    }
    close(fds[1]);
    char frame[FRAME];
    memset(frame, 'x', sizeof frame);
    if (!pipelined) {
        double *samples = malloc(sizeof(double) * (size_t)count);
        for (long i = 0; i < count + 200; i++) {
            double start = now_us();
            if (write(fds[0], frame, FRAME) != FRAME || read_full(fds[0], frame, FRAME) != 0) return 1;
            if (i >= 200) samples[i - 200] = now_us() - start;
        }
        qsort(samples, (size_t)count, sizeof(double), cmp);
        printf("{\"median_us\":%.3f,\"p99_us\":%.3f}\n", samples[count / 2], samples[(long)(count * 0.99)]);
    } else {
        long sent = 0, received = 0;
        double start = now_us();
        char buffer[FRAME * 64];
        while (received < count) {
            while (sent < count && sent - received < window) {
                if (write(fds[0], frame, FRAME) != FRAME) return 1;
                sent++;
            }
            ssize_t n = read(fds[0], buffer, sizeof buffer);
            if (n <= 0) return 1;
            received += n / FRAME;
            /* A partial frame is finished before counting on. */
            if (n % FRAME) {
                if (read_full(fds[0], buffer, FRAME - (size_t)(n % FRAME)) != 0) return 1;
                received++;
            }
        }
        double seconds = (now_us() - start) / 1e6;
        printf("{\"frames_per_second\":%.0f}\n", count / seconds);
    }
    close(fds[0]);
    waitpid(child, NULL, 0);
    return 0;
}
