/* SPDX-License-Identifier: Apache-2.0 */
/* The floor under every round trip through a relay on this machine: a
 * 600-byte TCP ping-pong on 127.0.0.1 between two processes, each waiting
 * in epoll, TCP_NODELAY on both sides (issue 12; docs/performance.md,
 * "Round trips C<->C"). A ping through the relay crosses four such hops.
 *
 *   bench_loopback [ROUND_TRIPS]   (default 5000) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG 600

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int epoll_on(int fd) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        perror("epoll");
        exit(1);
    }
    return ep;
}

/* The echo side: everything back until the peer closes (or 60 s pass). */
static void echo(const struct sockaddr_in *a) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (const struct sockaddr *)a, sizeof *a) < 0) _exit(1);
    int ep = epoll_on(c);
    char b[4096];
    for (;;) {
        struct epoll_event ev;
        if (epoll_wait(ep, &ev, 1, 60000) <= 0) _exit(1);
        ssize_t n = recv(c, b, sizeof b, 0);
        if (n <= 0) _exit(0);
        if (send(c, b, (size_t)n, 0) != n) _exit(1);
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 5000;
    if (n < 1 || n > 1000000) n = 5000;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) < 0) {
        perror("listen");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) echo(&a);
    int s = accept(l, NULL, NULL);
    if (s < 0) return 1;
    int ep = epoll_on(s);
    char b[MSG];
    memset(b, 'x', sizeof b);
    double *r = malloc((size_t)n * sizeof *r);
    if (!r) return 1;
    for (long i = 0; i < n; i++) {
        double t = now_us();
        if (send(s, b, MSG, 0) != MSG) return 1;
        size_t got = 0;
        while (got < MSG) {
            struct epoll_event ev;
            if (epoll_wait(ep, &ev, 1, 10000) <= 0) return 1;
            ssize_t k = recv(s, b, sizeof b, 0);
            if (k <= 0) return 1;
            got += (size_t)k;
        }
        r[i] = now_us() - t;
    }
    close(s);
    waitpid(pid, NULL, 0);
    qsort(r, (size_t)n, sizeof *r, cmp);
    printf("RESULT loopback round_trips=%ld bytes=%d p10_us=%.1f p50_us=%.1f p90_us=%.1f\n", n, MSG,
           r[n / 10], r[n / 2], r[n * 9 / 10]);
    free(r);
    return 0;
}
