#define _GNU_SOURCE
#include "runner_bus.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What a helper reports: the step that failed (0: none, a descriptor comes with it) and errno. */
struct report {
    int step;
    int error;
};

static void send_report(int channel, int step, int error, int fd) {
    struct report report = {step, error};
    struct iovec iov = {&report, sizeof(report)};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr message = {0};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    if (fd >= 0) {
        memset(&control, 0, sizeof(control));
        message.msg_control = control.buffer;
        message.msg_controllen = sizeof(control.buffer);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(header), &fd, sizeof(int));
    }
    while (sendmsg(channel, &message, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
}

static void close_range_or_loop(unsigned int first, unsigned int last) {
    if (syscall(SYS_close_range, first, last, 0) == 0) return;
    unsigned int bound = last > 65535 ? 65535 : last;
    for (unsigned int fd = first; fd <= bound; fd++) close((int)fd);
}

/* Closes every descriptor but `keep` (sorted ascending, `count` of them, distinct). */
static void close_all_except(const int *keep, int count) {
    unsigned int first = 0;
    for (int i = 0; i < count; i++) {
        unsigned int fd = (unsigned int)keep[i];
        if (fd > first) close_range_or_loop(first, fd - 1);
        first = fd + 1;
    }
    close_range_or_loop(first, ~0U);
}

/* The grandchild: in the guest's PID namespace and root. Never returns. */
static void connect_as_guest_root(int channel, uid_t uid, gid_t gid, const struct sockaddr_un *address,
                                  socklen_t length) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_DUMPABLE, 0);
    /* Raw system calls: this thread is the process's only one, and glibc's set*id wrappers
     * would try to reach the parent's other threads. */
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, gid, gid, gid) < 0 ||
        syscall(SYS_setresuid, uid, uid, uid) < 0 || prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 ||
        syscall(SYS_capset, &header, data) < 0) {
        send_report(channel, RUNNER_CONNECT_CREDENTIALS, errno, -1);
        _exit(1);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        send_report(channel, RUNNER_CONNECT_SOCKET, errno, -1);
        _exit(1);
    }
    int r;
    do {
        r = connect(fd, (const struct sockaddr *)address, length);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        send_report(channel, RUNNER_CONNECT_CONNECT, errno, -1);
        _exit(1);
    }
    send_report(channel, RUNNER_CONNECT_OK, 0, fd);
    _exit(0);
}

/* The child: joins the guest's PID namespace and root, then forks the grandchild. Never returns. */
static void enter_guest(int channel, int namespace, int root, uid_t uid, gid_t gid, const struct sockaddr_un *address,
                        socklen_t length) {
    int keep[3] = {channel, namespace, root};
    /* sort three */
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (keep[j] < keep[i]) {
                int t = keep[i];
                keep[i] = keep[j];
                keep[j] = t;
            }
    close_all_except(keep, 3);
    if (setns(namespace, CLONE_NEWPID) < 0) {
        send_report(channel, RUNNER_CONNECT_SETNS, errno, -1);
        _exit(1);
    }
    if (fchdir(root) < 0 || chroot(".") < 0) {
        send_report(channel, RUNNER_CONNECT_CHROOT, errno, -1);
        _exit(1);
    }
    close(namespace);
    close(root);
    /* _Fork: no atfork handlers (this process is a fork of a multithreaded one). */
    pid_t pid = _Fork();
    if (pid < 0) {
        send_report(channel, RUNNER_CONNECT_FORK_GUEST, errno, -1);
        _exit(1);
    }
    if (pid == 0) connect_as_guest_root(channel, uid, gid, address, length);
    close(channel);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reaps `pid` by `deadline` (CLOCK_MONOTONIC ms), or kills it then. */
static void reap(pid_t pid, long long deadline) {
    while (1) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) return;
        if (r == 0 && now_ms() >= deadline) break;
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

int runner_guest_connect(int leader, uid_t root_uid, gid_t root_gid, const char *path, int timeout_ms,
                         int *error_step) {
    int step = 0;
    int saved = 0;
    int result = -1;
    struct sockaddr_un address;
    memset(&address, 0, sizeof(address));
    address.sun_family = AF_UNIX;
    if (leader <= 1 || path == NULL || path[0] != '/' || strlen(path) >= sizeof(address.sun_path)) {
        if (error_step) *error_step = RUNNER_CONNECT_CONNECT;
        errno = EINVAL;
        return -1;
    }
    strcpy(address.sun_path, path);
    socklen_t length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);

    char name[64];
    snprintf(name, sizeof(name), "/proc/%d/ns/pid", leader);
    int namespace = open(name, O_RDONLY | O_CLOEXEC);
    if (namespace < 0) {
        if (error_step) *error_step = RUNNER_CONNECT_OPEN_NAMESPACE;
        return -1;
    }
    snprintf(name, sizeof(name), "/proc/%d/root", leader);
    int root = open(name, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        saved = errno;
        close(namespace);
        if (error_step) *error_step = RUNNER_CONNECT_OPEN_ROOT;
        errno = saved;
        return -1;
    }
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        saved = errno;
        close(namespace);
        close(root);
        if (error_step) *error_step = RUNNER_CONNECT_SOCKETPAIR;
        errno = saved;
        return -1;
    }
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 5000);
    pid_t pid = fork();
    if (pid == 0) enter_guest(pair[1], namespace, root, root_uid, root_gid, &address, length);
    saved = errno;
    close(pair[1]);
    close(namespace);
    close(root);
    if (pid < 0) {
        close(pair[0]);
        if (error_step) *error_step = RUNNER_CONNECT_FORK;
        errno = saved;
        return -1;
    }

    struct pollfd pfd = {pair[0], POLLIN, 0};
    int ready;
    do {
        long long left = deadline - now_ms();
        ready = poll(&pfd, 1, left > 0 ? (int)left : 0);
    } while (ready < 0 && errno == EINTR);
    if (ready <= 0) {
        step = RUNNER_CONNECT_TIMEOUT;
        saved = ETIMEDOUT;
    } else {
        struct report report = {RUNNER_CONNECT_NO_ANSWER, EPIPE};
        struct iovec iov = {&report, sizeof(report)};
        union {
            char buffer[CMSG_SPACE(sizeof(int) * 4)];
            struct cmsghdr align;
        } control;
        struct msghdr message = {0};
        message.msg_iov = &iov;
        message.msg_iovlen = 1;
        message.msg_control = control.buffer;
        message.msg_controllen = sizeof(control.buffer);
        ssize_t n;
        do {
            n = recvmsg(pair[0], &message, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        int received = -1;
        if (n > 0) {
            for (struct cmsghdr *h = CMSG_FIRSTHDR(&message); h; h = CMSG_NXTHDR(&message, h)) {
                if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
                size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < count; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
                    if (received < 0)
                        received = fd;
                    else
                        close(fd);
                }
            }
        }
        if (n < 0) {
            step = RUNNER_CONNECT_RECEIVE;
            saved = errno;
        } else if (n != (ssize_t)sizeof(report)) {
            step = RUNNER_CONNECT_NO_ANSWER;
            saved = EPIPE;
        } else if (report.step != RUNNER_CONNECT_OK || received < 0) {
            step = report.step != RUNNER_CONNECT_OK ? report.step : RUNNER_CONNECT_NO_ANSWER;
            saved = report.step != RUNNER_CONNECT_OK ? report.error : EPIPE;
        } else {
            result = received;
            received = -1;
        }
        if (received >= 0) close(received);
    }
    close(pair[0]);
    /* The helpers end right after their answer; a timeout kills them (the grandchild dies with
     * its parent: PR_SET_PDEATHSIG). */
    reap(pid, step == RUNNER_CONNECT_TIMEOUT ? now_ms() : deadline + 1000);
    if (error_step) *error_step = step;
    if (result < 0) errno = saved;
    return result;
}

int runner_peer_pid(int fd) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) < 0) return -1;
    return credentials.pid;
}

int runner_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
