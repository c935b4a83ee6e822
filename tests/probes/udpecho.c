/* A UDP echo for the network tests (busybox's nc has no UDP mode), built static like syscalls.c.
 *   udpecho serve PORT             echo every datagram back to its sender, forever
 *   udpecho send HOST PORT MESSAGE send MESSAGE, print the answer; exit 1 after 3 s without one
 * HOST is a name (resolved through the container's /etc/resolv.conf) or an address. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int serve(const char *port) {
    struct sockaddr_storage peer;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_PASSIVE}, *ai;
    char buf[2048];
    if (getaddrinfo(NULL, port, &hints, &ai) != 0) return 2;
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) { perror("bind"); return 2; }
    for (;;) {
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &len);
        if (n >= 0) sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, len);
    }
}

static int send_one(const char *host, const char *port, const char *msg) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *ai;
    struct timeval tv = {.tv_sec = 3};
    char buf[2048];
    int err = getaddrinfo(host, port, &hints, &ai);
    if (err != 0) { fprintf(stderr, "resolve %s: %s\n", host, gai_strerror(err)); return 1; }
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (sendto(fd, msg, strlen(msg), 0, ai->ai_addr, ai->ai_addrlen) < 0) { perror("sendto"); return 1; }
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n < 0) { perror("recv"); return 1; }
    buf[n] = 0;
    printf("%s\n", buf);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "serve") == 0) return serve(argv[2]);
    if (argc == 5 && strcmp(argv[1], "send") == 0) return send_one(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: udpecho serve PORT | udpecho send HOST PORT MESSAGE\n");
    return 2;
}
