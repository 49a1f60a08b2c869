#ifndef RUNNER_ENTER_H
#define RUNNER_ENTER_H
/* Starting a program inside a guest that has no init of ours to ask (an image without systemd,
 * run with `systemd-nspawn --as-pid2`): the program is the guest's, started in the guest's
 * namespaces as a guest user, never with the host's privileges. */
#include <stdint.h>
#include <sys/types.h>

/* Which step of runner_guest_spawn failed (*error_step); *error_code is the errno. */
enum runner_guest_spawn_step {
    RUNNER_SPAWN_OK = 0,
    RUNNER_SPAWN_PIPE = 1,
    RUNNER_SPAWN_FORK = 2,
    RUNNER_SPAWN_SETNS = 3,       /* setns(pidfd, user|mnt|pid|uts|ipc|net|cgroup) */
    RUNNER_SPAWN_CLONE = 4,       /* the step's process, a sibling of the helper */
    RUNNER_SPAWN_CREDENTIALS = 5, /* bounding set, setgroups, setresgid, setresuid, capset */
    RUNNER_SPAWN_CHDIR = 6,       /* the working directory, as the guest user, in the guest */
    RUNNER_SPAWN_DESCRIPTORS = 7, /* dup2 of stdin/stdout/stderr */
    RUNNER_SPAWN_EXEC = 8,        /* execve (after the PATH search) */
    RUNNER_SPAWN_NO_ANSWER = 9,   /* the helper ended without naming the process */
};

/* What to start. Every string is NUL-terminated; argv and envp end with NULL. */
struct runner_guest_spawn_request {
    int leader_pidfd;       /* pidfd of the guest's PID 1 (host view) */
    uid_t uid;              /* ids inside the guest's user namespace */
    gid_t gid;
    const gid_t *groups;    /* supplementary groups (inside the guest) */
    int group_count;
    uint64_t capabilities;  /* bounding set kept (bit n = capability n); the rest is dropped */
    const char *cwd;        /* inside the guest; NULL: / */
    const char *const *argv;
    const char *const *envp;
    const char *search_path; /* PATH for a program named without a slash */
    int stdin_fd, stdout_fd, stderr_fd;
};

/* Starts request->argv in the guest whose PID 1 `leader_pidfd` designates: a forked helper
 * joins all the guest's namespaces at once through the pidfd (user, mount, PID, UTS, IPC,
 * network, cgroup; the mount namespace makes the guest's root the process's root, so every path
 * after it, the working directory and the program included, resolves inside the guest), clones
 * the step's process as a child of the caller (CLONE_PARENT: the caller waits for it; CLONE_VM |
 * CLONE_VFORK on a stack of its own, so the caller's memory is copied once, for the helper) and
 * exits.
 * The step's process leads a process group of its own, drops the capability bounding set to
 * `capabilities`, takes the guest ids (uid 0 in the guest keeps its capabilities in the guest's
 * user namespace only), changes to `cwd` and execs with exactly `envp`. It is not dumpable until
 * the exec, and holds no descriptor but its three standard streams. After fork only
 * async-signal-safe calls and raw system calls run.
 *
 * Returns the step's host PID (the caller's child; reap it), or -1 with *error_step and
 * *error_code set (the process, if it was made, has been reaped). */
int runner_guest_spawn(const struct runner_guest_spawn_request *request, int *error_step, int *error_code);

#endif
