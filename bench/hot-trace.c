// hot-trace: run a command under ptrace and single-step it and every process it forks, for as
// long as they run the binary FILE; print the file offsets of the instructions they executed
// inside FILE, one decimal number per line, each once. Used by bench/hot-order.sh.
//
// usage: hot-trace FILE COMMAND [ARG...]
//
// Single-stepping rather than sampling or uprobes: it sees every function, even one that runs a
// few instructions once, and it needs nothing from the kernel but ptrace.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_MAPS 64
#define MAX_PROCS 64

struct map {
    uintptr_t start, end, offset;
};

// A traced process: the executable mappings of FILE in it, as last read from /proc/PID/maps.
struct proc {
    pid_t pid;
    int nmaps;
    struct map maps[MAX_MAPS];
};

static struct proc procs[MAX_PROCS];
static struct stat target;
static unsigned char *seen; // one bit per byte of FILE
static size_t file_size;

static void die(const char *what) {
    perror(what);
    exit(2);
}

static struct proc *find(pid_t pid, int create) {
    for (int i = 0; i < MAX_PROCS; i++)
        if (procs[i].pid == pid)
            return &procs[i];
    if (!create)
        return NULL;
    for (int i = 0; i < MAX_PROCS; i++)
        if (procs[i].pid == 0) {
            procs[i] = (struct proc){.pid = pid};
            return &procs[i];
        }
    fprintf(stderr, "hot-trace: more than %d processes\n", MAX_PROCS);
    exit(2);
}

static void read_maps(struct proc *p) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", p->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        die(path);
    p->nmaps = 0;
    while (fgets(line, sizeof line, f) && p->nmaps < MAX_MAPS) {
        unsigned long start, end, offset, ino;
        unsigned int major, minor;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu", &start, &end, perms, &offset, &major, &minor,
                   &ino) != 7)
            continue;
        if (perms[2] != 'x' || ino != target.st_ino || makedev(major, minor) != target.st_dev)
            continue;
        p->maps[p->nmaps++] = (struct map){start, end, offset};
    }
    fclose(f);
}

// Whether PID now runs FILE (after an exec).
static int runs_target(pid_t pid) {
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    return stat(path, &st) == 0 && st.st_ino == target.st_ino && st.st_dev == target.st_dev;
}

static void record(struct proc *p) {
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, p->pid, 0, &regs) != 0)
        return;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < p->nmaps; i++) {
            struct map *m = &p->maps[i];
            if (regs.rip >= m->start && regs.rip < m->end) {
                size_t off = regs.rip - m->start + m->offset;
                if (off < file_size)
                    seen[off / 8] |= 1 << (off % 8);
                return;
            }
        }
        // Outside every known mapping of FILE: the vdso, or FILE mapped anew.
        if (pass == 0)
            read_maps(p);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: hot-trace FILE COMMAND [ARG...]\n");
        return 2;
    }
    if (stat(argv[1], &target) != 0)
        die(argv[1]);
    file_size = target.st_size;
    seen = calloc(file_size / 8 + 1, 1);
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        raise(SIGSTOP); // until the tracer has seized it
        execvp(argv[2], argv + 2);
        die(argv[2]);
    }
    int status, exit_code = 1, live = 1, draining = 0;
    if (waitpid(child, &status, WUNTRACED) != child)
        die("waitpid");
    // Seized, not PTRACE_TRACEME: a seized tracee (and its forks) can be interrupted, which
    // lets the tracer detach from a process that outlives the command (create's init).
    long opts = PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
                PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SEIZE, child, 0, opts) != 0)
        die("PTRACE_SEIZE");
    kill(child, SIGCONT); // not stepped until it has executed FILE
    while (live > 0) {
        pid_t pid = waitpid(-1, &status, __WALL);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        struct proc *p = find(pid, 0);
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (p)
                p->pid = 0;
            live--;
            if (pid == child) {
                exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                // The command is done: let the processes it left run on, untraced.
                draining = 1;
                for (int i = 0; i < MAX_PROCS; i++)
                    if (procs[i].pid > 0)
                        ptrace(PTRACE_INTERRUPT, procs[i].pid, 0, 0);
            }
            continue;
        }
        if (!WIFSTOPPED(status))
            continue;
        int sig = WSTOPSIG(status), event = status >> 16, inject = 0;
        if (!p && pid != child) {
            // A forked process (only stepped ones fork here), stopped before its parent's event
            // was seen or after: it runs the same code, so step it from its first instruction.
            p = find(pid, 1);
            read_maps(p);
            live++;
        }
        if (draining) {
            if (event == 0 && sig != SIGSTOP && sig != SIGTRAP)
                inject = sig;
            ptrace(PTRACE_DETACH, pid, 0, inject);
            if (p)
                p->pid = 0;
            live--;
            continue;
        }
        if (event == PTRACE_EVENT_EXEC) {
            if (!runs_target(pid)) {
                if (p)
                    p->pid = 0;
                live--;
                ptrace(PTRACE_DETACH, pid, 0, 0);
                continue;
            }
            p = find(pid, 1);
            read_maps(p);
        } else if (event == 0 && sig == SIGTRAP) {
            if (p)
                record(p);
        } else if (event == 0 && sig != SIGSTOP) {
            inject = sig; // a real signal: deliver it
        }
        ptrace(p ? PTRACE_SINGLESTEP : PTRACE_CONT, pid, 0, inject);
    }
    for (size_t off = 0; off < file_size; off++)
        if (seen[off / 8] & (1 << (off % 8)))
            printf("%zu\n", off);
    return exit_code;
}
