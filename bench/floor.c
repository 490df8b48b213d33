/* The floor: the least work any container runtime must do to run /bin/true in a fresh container.
 * clone() a child in new PID, mount, UTS, IPC and network namespaces; the child makes its mounts
 * private, bind-mounts the rootfs onto itself, pivot_roots into it, mounts /proc and execs /bin/true;
 * the parent waits. No cgroups, no config parsing, no state: a lower bound, not a runtime.
 *
 * usage: floor ROOTFS [ARGS...]   (default ARGS: /bin/true)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *rootfs;
static char **child_argv;

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "floor: %s %s: %s\n", what, arg, strerror(errno));
    _exit(127);
}

static int child(void *unused)
{
    (void)unused;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        die("make-rprivate", "/");
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        die("bind-mount", rootfs);
    if (chdir(rootfs) < 0)
        die("chdir", rootfs);
    /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves the new. */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        die("pivot_root", rootfs);
    if (umount2(".", MNT_DETACH) < 0)
        die("umount old root", ".");
    if (chdir("/") < 0)
        die("chdir", "/");
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        die("mount", "/proc");
    execv(child_argv[0], child_argv);
    die("exec", child_argv[0]);
    return 127;
}

int main(int argc, char **argv)
{
    static char *default_argv[] = {"/bin/true", NULL};
    static char stack[64 * 1024];
    int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD;
    int status;
    pid_t pid;

    if (argc < 2) {
        fprintf(stderr, "usage: floor ROOTFS [ARGS...]\n");
        return 2;
    }
    rootfs = argv[1];
    child_argv = argc > 2 ? &argv[2] : default_argv;
    pid = clone(child, stack + sizeof(stack), flags, NULL);
    if (pid < 0)
        die("clone", "");
    if (waitpid(pid, &status, 0) < 0)
        die("waitpid", "");
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
