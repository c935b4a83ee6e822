/*
 * syscalls: try the system calls a container should (or should not) be able to make, one per argument,
 * and print one line each: "<op> ok <detail>" or "<op> errno <n>". Built static by the tests and
 * bind-mounted into a busybox container, which has no keyctl, perf or io_uring tools of its own.
 *
 *   keysteal:DESC      link the user keyring into the session keyring, find DESC there, print its payload
 *   addkey:DESC:DATA   add a "user" key to the user keyring (uid 0's is the host root's)
 *   session            describe the session keyring (its name)
 *   perf               perf_event_open, user space only, on ourselves
 *   iouring            io_uring_setup
 *   clonens            clone with CLONE_NEWUSER
 *   clone3             clone3 with no arguments (the filter answers before the kernel checks them)
 *   unshare-user       unshare(CLONE_NEWUSER)
 *   personality:HEX    personality(HEX)
 *   vsock              socket(AF_VSOCK, SOCK_STREAM, 0)
 *   mkdir:PATH         mkdir(PATH, 0755)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY_SPEC_SESSION_KEYRING -3
#define KEY_SPEC_USER_KEYRING -4
#define KEYCTL_DESCRIBE 6
#define KEYCTL_LINK 8
#define KEYCTL_SEARCH 10
#define KEYCTL_READ 11
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static int report(const char *op, long rc, const char *detail) {
    if (rc < 0) {
        printf("%s errno %d\n", op, errno);
        return 1;
    }
    printf("%s ok %s\n", op, detail ? detail : "");
    return 0;
}

static int keysteal(const char *desc) {
    char buf[4096];
    syscall(SYS_keyctl, KEYCTL_LINK, KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING);
    long serial = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", desc, 0);
    if (serial < 0)
        return report("keysteal", serial, NULL);
    long n = syscall(SYS_keyctl, KEYCTL_READ, serial, buf, sizeof(buf) - 1);
    if (n >= 0)
        buf[n < (long)sizeof(buf) - 1 ? n : (long)sizeof(buf) - 1] = 0;
    return report("keysteal", n, buf);
}

static int addkey(char *arg) {
    char *data = strchr(arg, ':');
    if (!data)
        return report("addkey", -1, NULL);
    *data++ = 0;
    long serial = syscall(SYS_add_key, "user", arg, data, strlen(data), KEY_SPEC_USER_KEYRING);
    char detail[32];
    snprintf(detail, sizeof(detail), "%ld", serial);
    return report("addkey", serial, detail);
}

static int session(void) {
    char buf[4096];
    long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, KEY_SPEC_SESSION_KEYRING, buf, sizeof(buf) - 1);
    if (n >= 0)
        buf[sizeof(buf) - 1] = 0;
    return report("session", n, buf);
}

static int perf(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    return report("perf", fd, NULL);
}

static int iouring(void) {
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    long fd = syscall(SYS_io_uring_setup, 1, &params);
    return report("iouring", fd, NULL);
}

static int clonens(void) {
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return report("clonens", pid, NULL);
}

int main(int argc, char **argv) {
    int failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        char *op = argv[i], *arg = strchr(op, ':');
        if (arg)
            *arg++ = 0;
        errno = 0;
        if (!strcmp(op, "keysteal") && arg)
            failed |= keysteal(arg);
        else if (!strcmp(op, "addkey") && arg)
            failed |= addkey(arg);
        else if (!strcmp(op, "session"))
            failed |= session();
        else if (!strcmp(op, "perf"))
            failed |= perf();
        else if (!strcmp(op, "iouring"))
            failed |= iouring();
        else if (!strcmp(op, "clonens"))
            failed |= clonens();
        else if (!strcmp(op, "clone3"))
            failed |= report("clone3", syscall(SYS_clone3, NULL, 0), NULL);
        else if (!strcmp(op, "unshare-user"))
            failed |= report("unshare-user", unshare(CLONE_NEWUSER), NULL);
        else if (!strcmp(op, "personality") && arg)
            failed |= report("personality", syscall(SYS_personality, strtoul(arg, NULL, 16)), NULL);
        else if (!strcmp(op, "vsock"))
            failed |= report("vsock", socket(AF_VSOCK, SOCK_STREAM, 0), NULL);
        else if (!strcmp(op, "mkdir") && arg)
            failed |= report("mkdir", mkdir(arg, 0755), NULL);
        else {
            fprintf(stderr, "syscalls: unknown operation %s\n", op);
            return 2;
        }
    }
    return failed;
}
