#ifndef RUNNER_BUS_H
#define RUNNER_BUS_H
/* Connecting to a guest's systemd from the host without running anything from the guest and
 * without following a path the guest controls on the host's side. */
#include <sys/types.h>

/* Which step of runner_guest_connect failed (*error_step); errno says why. */
enum runner_guest_connect_step {
    RUNNER_CONNECT_OK = 0,
    RUNNER_CONNECT_OPEN_NAMESPACE = 1, /* open /proc/LEADER/ns/pid */
    RUNNER_CONNECT_OPEN_ROOT = 2,      /* open /proc/LEADER/root */
    RUNNER_CONNECT_SOCKETPAIR = 3,
    RUNNER_CONNECT_FORK = 4,
    RUNNER_CONNECT_SETNS = 5,   /* setns(CLONE_NEWPID) */
    RUNNER_CONNECT_CHROOT = 6,  /* fchdir + chroot into the guest's root */
    RUNNER_CONNECT_FORK_GUEST = 7,
    RUNNER_CONNECT_CREDENTIALS = 8, /* setgroups, setresgid, setresuid, capset */
    RUNNER_CONNECT_SOCKET = 9,
    RUNNER_CONNECT_CONNECT = 10, /* connect(path) inside the guest's root */
    RUNNER_CONNECT_SEND = 11,
    RUNNER_CONNECT_TIMEOUT = 12, /* no answer within timeout_ms (errno ETIMEDOUT) */
    RUNNER_CONNECT_NO_ANSWER = 13, /* the helper ended without an answer */
    RUNNER_CONNECT_RECEIVE = 14,
};

/* A Unix stream socket connected to `path` as the guest whose PID 1 is `leader` (host PID) sees
 * it: the connect happens in a grandchild that joined the guest's PID namespace, chrooted into the
 * guest's root (every path, symlinks included, resolves there, never on the host), with the host
 * credentials of the guest's root (`root_uid`/`root_gid`), no supplementary groups, no
 * capabilities, not dumpable. The descriptor comes back with SCM_RIGHTS; both helpers are reaped
 * before the return. Nothing is exec'd; after fork only async-signal-safe system calls run.
 *
 * Returns the connected descriptor (close-on-exec), or -1 with errno set and *error_step naming
 * the step that failed. The caller still must check the peer (SO_PEERCRED) before trusting it. */
int runner_guest_connect(int leader, uid_t root_uid, gid_t root_gid, const char *path, int timeout_ms,
                         int *error_step);

/* The host-namespace PID of the process that made the peer socket of `fd` (SO_PEERCRED; for a
 * client socket: whoever listened), or -1 with errno set. */
int runner_peer_pid(int fd);

/* pipe2(fds, O_CLOEXEC). */
int runner_pipe_cloexec(int fds[2]);

#endif
