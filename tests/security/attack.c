/* Attacks run from inside a test container (compiled static so any rootfs can run it).
 * Each prints one result line per attempt: "<what>=ok" or "<what>=<errno name>".
 *   attack exe COMM     find the process named COMM, try to open its exe for writing (and via an
 *                       O_PATH fd reopened through /proc/self/fd), keep a read fd, wait for the
 *                       process to exit, then reopen that fd for writing with O_TRUNC.
 *   attack peek PID     read /proc/PID/environ and /proc/PID/mem, PTRACE_ATTACH to PID.
 *   attack sleep        sleep (a victim for the control of `exe`). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, int ok) {
    printf("%s=%s\n", what, ok ? "ok" : strerrorname_np(errno));
    fflush(stdout);
}

static int find(const char *comm) {
    for (int tries = 0; tries < 1000; tries++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == getpid()) continue;
            char path[64], name[64] = {0};
            snprintf(path, sizeof path, "/proc/%d/comm", pid);
            int fd = open(path, O_RDONLY);
            if (fd < 0) continue;
            ssize_t n = read(fd, name, sizeof name - 1);
            close(fd);
            if (n > 0 && name[n - 1] == '\n') name[n - 1] = 0;
            if (strcmp(name, comm) == 0) { closedir(d); return pid; }
        }
        if (d) closedir(d);
        usleep(10000);
    }
    return -1;
}

static int exe(const char *comm) {
    int pid = find(comm);
    if (pid < 0) { puts("found=no"); return 1; }
    char path[64], fdpath[64];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    int w = open(path, O_WRONLY);
    report("direct_write", w >= 0);
    int p = open(path, O_PATH);
    report("open_path", p >= 0);
    int r = open(path, O_RDONLY);
    report("open_read", r >= 0);
    if (r < 0) return 0;
    puts("holding");
    fflush(stdout);
    while (kill(pid, 0) == 0) usleep(10000);
    usleep(100000);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", r);
    int w2 = open(fdpath, O_WRONLY | O_TRUNC);
    report("reopen_write", w2 >= 0);
    if (p >= 0) {
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", p);
        int w3 = open(fdpath, O_WRONLY | O_TRUNC);
        report("reopen_path_write", w3 >= 0);
    }
    return 0;
}

static int peek(int pid) {
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    int fd = open(path, O_RDONLY);
    report("environ", fd >= 0 && read(fd, buf, sizeof buf) >= 0);
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    fd = open(path, O_RDONLY);
    report("mem", fd >= 0);
    long rc = ptrace(PTRACE_ATTACH, pid, 0, 0);
    report("ptrace", rc == 0);
    if (rc == 0) { waitpid(pid, 0, __WALL); ptrace(PTRACE_DETACH, pid, 0, 0); }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "exe") == 0) return exe(argv[2]);
    if (argc == 3 && strcmp(argv[1], "peek") == 0) return peek(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "sleep") == 0) { usleep(atoi(argv[2]) * 1000); return 0; }
    fprintf(stderr, "usage: attack exe COMM | peek PID | sleep MS\n");
    return 2;
}
