/*
 * idleconns — opens N keep-alive connections to HOST:PORT, makes one GET PATH on each, then
 * keeps them all open and idle. Prints "ready N" once every connection has had its answer, then
 * waits until its standard input closes (the caller measures the server meanwhile).
 *
 *   idleconns HOST PORT N PATH
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    struct sockaddr_in a;
    struct epoll_event ev, evs[256];
    char req[256], buf[4096];
    int n, i, ep, answered = 0, *fds;

    if (argc != 5) {
        fprintf(stderr, "usage: idleconns HOST PORT N PATH\n");
        return 2;
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    a.sin_port = htons((uint16_t)strtol(argv[2], NULL, 10));
    n = (int)strtol(argv[3], NULL, 10);
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", argv[4]);
    fds = calloc((size_t)n, sizeof(int));
    ep = epoll_create1(0);
    for (i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0) {
            fprintf(stderr, "connection %d: %s\n", i, strerror(errno));
            return 1;
        }
        if (write(fds[i], req, strlen(req)) < 0) {
            return 1;
        }
        ev.events = EPOLLIN;
        ev.data.fd = fds[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        /* keep the number of unanswered requests bounded */
        while (i - answered > 200 || (i == n - 1 && answered < n)) {
            int k, got = epoll_wait(ep, evs, 256, 5000);
            if (got <= 0) {
                fprintf(stderr, "timeout: %d of %d answered\n", answered, n);
                return 1;
            }
            for (k = 0; k < got; k++) {
                ssize_t r = read(evs[k].data.fd, buf, sizeof(buf));
                if (r > 0 && memmem(buf, (size_t)r, "\r\n\r\n", 4) != NULL) {
                    answered++;
                    epoll_ctl(ep, EPOLL_CTL_DEL, evs[k].data.fd, NULL);
                } else if (r <= 0) {
                    fprintf(stderr, "a connection closed\n");
                    return 1;
                }
            }
        }
    }
    printf("ready %d\n", n);
    fflush(stdout);
    while (read(0, buf, sizeof(buf)) > 0) {
    }
    return 0;
}
