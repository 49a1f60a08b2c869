#define _GNU_SOURCE
#include "runner_enter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the helper and the step's process write to the caller: a PID, or a failed step. */
struct spawn_report {
    int pid;
    int step;
    int error;
};

static void write_report(int fd, int pid, int step, int error) {
    struct spawn_report report = {pid, step, error};
    while (write(fd, &report, sizeof(report)) < 0 && errno == EINTR) {
    }
}

static int read_report(int fd, struct spawn_report *report) {
    size_t got = 0;
    while (got < sizeof(*report)) {
        ssize_t n = read(fd, (char *)report + got, sizeof(*report) - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return (int)got;
        got += (size_t)n;
    }
    return (int)got;
}

/* Closes every descriptor from 3 up except `keep`. */
static void close_from_three_except(int keep) {
    if (keep > 3) syscall(SYS_close_range, 3, (unsigned int)keep - 1, 0);
    syscall(SYS_close_range, (unsigned int)(keep < 3 ? 3 : keep + 1), ~0U, 0);
}

/* Moves a descriptor above 2 (so the dup2 of the standard streams cannot clobber it). */
static int above_standard(int fd) {
    if (fd > 2 || fd < 0) return fd;
    return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* The step's process: in the guest's namespaces, still with every capability of the guest's user
 * namespace. Never returns. */
static void become_step(const struct runner_guest_spawn_request *r, int channel) {
    int in = above_standard(r->stdin_fd), out = above_standard(r->stdout_fd), err = above_standard(r->stderr_fd);
    if (in < 0 || out < 0 || err < 0) {
        write_report(channel, 0, RUNNER_SPAWN_DESCRIPTORS, errno);
        _exit(127);
    }
    setpgid(0, 0);
    /* The capability bounding set, while guest root may still change it. */
    for (int cap = 0; cap <= 63; cap++) {
        if (r->capabilities & ((uint64_t)1 << cap)) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL) break; /* past the kernel's last capability: so is every later one */
            write_report(channel, 0, RUNNER_SPAWN_CREDENTIALS, errno);
            _exit(127);
        }
    }
    /* Raw system calls: glibc's set*id wrappers would try to reach the parent's other threads. */
    if (syscall(SYS_setgroups, r->group_count, r->groups) < 0 || syscall(SYS_setresgid, r->gid, r->gid, r->gid) < 0 ||
        syscall(SYS_setresuid, r->uid, r->uid, r->uid) < 0 ||
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
        write_report(channel, 0, RUNNER_SPAWN_CREDENTIALS, errno);
        _exit(127);
    }
    /* Guest root keeps only the kept capabilities (an unprivileged uid has none left). */
    if (r->uid == 0) {
        struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof(data));
        if (syscall(SYS_capget, &header, data) < 0) {
            write_report(channel, 0, RUNNER_SPAWN_CREDENTIALS, errno);
            _exit(127);
        }
        for (int i = 0; i < 2; i++) {
            uint32_t keep = (uint32_t)(r->capabilities >> (32 * i));
            data[i].effective &= keep;
            data[i].permitted &= keep;
            data[i].inheritable &= keep;
        }
        if (syscall(SYS_capset, &header, data) < 0) {
            write_report(channel, 0, RUNNER_SPAWN_CREDENTIALS, errno);
            _exit(127);
        }
    }
    if (chdir(r->cwd ? r->cwd : "/") < 0) {
        write_report(channel, 0, RUNNER_SPAWN_CHDIR, errno);
        _exit(127);
    }
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
        write_report(channel, 0, RUNNER_SPAWN_DESCRIPTORS, errno);
        _exit(127);
    }
    close_from_three_except(channel);
    sigset_t none;
    sigemptyset(&none);
    for (int sig = 1; sig < 65; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }
    sigprocmask(SIG_SETMASK, &none, NULL);
    const char *program = r->argv[0];
    int failure = ENOENT;
    if (strchr(program, '/')) {
        execve(program, (char *const *)r->argv, (char *const *)r->envp);
        failure = errno;
    } else {
        /* The PATH search, as execvpe does it, in the guest's root. */
        const char *path = r->search_path ? r->search_path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        size_t length = strlen(program);
        char candidate[4096];
        const char *p = path;
        while (1) {
            const char *end = strchrnul(p, ':');
            size_t dir = (size_t)(end - p);
            if (dir + 1 + length + 1 <= sizeof(candidate)) {
                memcpy(candidate, p, dir);
                if (dir == 0) candidate[dir++] = '.';
                candidate[dir] = '/';
                memcpy(candidate + dir + 1, program, length + 1);
                execve(candidate, (char *const *)r->argv, (char *const *)r->envp);
                if (errno == EACCES) failure = EACCES;
                else if (errno != ENOENT && errno != ENOTDIR) {
                    failure = errno;
                    break;
                }
            }
            if (*end == 0) break;
            p = end + 1;
        }
    }
    write_report(channel, 0, RUNNER_SPAWN_EXEC, failure);
    _exit(127);
}

/* What the step's clone starts with. */
struct step_start {
    const struct runner_guest_spawn_request *request;
    int channel;
};

static int step_main(void *argument) {
    const struct step_start *start = argument;
    become_step(start->request, start->channel);
    return 127;
}

/* The step's stack while it shares the helper's memory (until its exec). */
#define RUNNER_STEP_STACK (256 * 1024)

int runner_guest_spawn(const struct runner_guest_spawn_request *request, int *error_step, int *error_code) {
    *error_step = RUNNER_SPAWN_OK;
    *error_code = 0;
    int channel[2];
    if (pipe2(channel, O_CLOEXEC) < 0) {
        *error_step = RUNNER_SPAWN_PIPE;
        *error_code = errno;
        return -1;
    }
    pid_t helper = fork();
    if (helper < 0) {
        *error_step = RUNNER_SPAWN_FORK;
        *error_code = errno;
        close(channel[0]);
        close(channel[1]);
        return -1;
    }
    if (helper == 0) {
        close(channel[0]);
        /* Nothing in the guest may trace or read this copy of the caller before the exec. */
        prctl(PR_SET_DUMPABLE, 0);
        if (setns(request->leader_pidfd,
                  CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                      CLONE_NEWCGROUP) < 0) {
            write_report(channel[1], 0, RUNNER_SPAWN_SETNS, errno);
            _exit(1);
        }
        /* A sibling (the caller's child), in the guest's PID namespace. It shares this helper's
         * memory until its exec, on a stack of its own, while the helper waits (CLONE_VM |
         * CLONE_VFORK, as posix_spawn starts a child): the caller's address space is large, and
         * copying it a second time for a process that execs at once cost a step about a
         * millisecond. The helper itself must be a full copy: setns into a user namespace
         * refuses a process that shares its memory. The memory is not dumpable (above). */
        void *stack = mmap(NULL, RUNNER_STEP_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                           -1, 0);
        if (stack == MAP_FAILED) {
            write_report(channel[1], 0, RUNNER_SPAWN_CLONE, errno);
            _exit(1);
        }
        struct step_start start = {request, channel[1]};
        int step = clone(step_main, (char *)stack + RUNNER_STEP_STACK, CLONE_VM | CLONE_VFORK | CLONE_PARENT, &start);
        if (step < 0) {
            write_report(channel[1], 0, RUNNER_SPAWN_CLONE, errno);
            _exit(1);
        }
        write_report(channel[1], step, RUNNER_SPAWN_OK, 0);
        _exit(0);
    }
    close(channel[1]);
    int status;
    while (waitpid(helper, &status, __WALL) < 0 && errno == EINTR) {
    }
    /* Two reports at most: the helper's (the step's PID, or why there is none) and, when the
     * step could not start, the step's own. The step writes its report before the helper
     * writes its own (the helper waits for the step's exec or end). */
    struct spawn_report first;
    if (read_report(channel[0], &first) != (int)sizeof(first)) {
        close(channel[0]);
        *error_step = RUNNER_SPAWN_NO_ANSWER;
        *error_code = EPROTO;
        return -1;
    }
    if (first.step != RUNNER_SPAWN_OK && first.step != RUNNER_SPAWN_SETNS && first.step != RUNNER_SPAWN_CLONE) {
        /* The step's failure: the helper's report names the process to reap. */
        struct spawn_report helper_report;
        if (read_report(channel[0], &helper_report) == (int)sizeof(helper_report) && helper_report.pid > 0) {
            while (waitpid(helper_report.pid, &status, __WALL) < 0 && errno == EINTR) {
            }
        }
        close(channel[0]);
        *error_step = first.step;
        *error_code = first.error;
        return -1;
    }
    if (first.step != RUNNER_SPAWN_OK || first.pid <= 0) {
        close(channel[0]);
        *error_step = first.step ? first.step : RUNNER_SPAWN_NO_ANSWER;
        *error_code = first.error;
        return -1;
    }
    /* After the helper's report: nothing (the exec closed the step's end). */
    struct spawn_report second;
    int got = read_report(channel[0], &second);
    close(channel[0]);
    if (got == (int)sizeof(second)) {
        while (waitpid(first.pid, &status, __WALL) < 0 && errno == EINTR) {
        }
        *error_step = second.step;
        *error_code = second.error;
        return -1;
    }
    return first.pid;
}
