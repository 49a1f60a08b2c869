#ifndef RUNNER_PROCESS_H
#define RUNNER_PROCESS_H
/* Process descriptors (pidfd) and the posix_spawn extensions Swift's Glibc module does not expose
 * (they are GNU extensions, declared only under _GNU_SOURCE): signalling through a descriptor
 * never reaches a process that took over a recycled PID. Each wrapper returns what the call
 * returns and leaves errno set on failure. */

/* posix_spawnattr flag POSIX_SPAWN_SETSID (glibc >= 2.26): the child calls setsid(), so it leads
 * a new session (and a new process group) and no terminal signal of ours reaches it. process.c
 * checks at compile time that it is glibc's value. */
#define RUNNER_POSIX_SPAWN_SETSID 0x80

/* pidfd_open(pid, 0): a descriptor for the process `pid` (close-on-exec). */
int runner_pidfd_open(int pid);

/* pidfd_send_signal(pidfd, sig, NULL, 0). */
int runner_pidfd_send_signal(int pidfd, int sig);

/* posix_spawn_file_actions_addchdir_np(actions, path) (glibc >= 2.29): the child changes to
 * `path` after the earlier file actions, before exec. `actions` is a posix_spawn_file_actions_t. */
int runner_spawn_file_actions_addchdir(void *actions, const char *path);

/* posix_spawn_file_actions_addclosefrom_np(actions, from) (glibc >= 2.34): the child closes every
 * descriptor from `from` up, after the earlier file actions. `actions` is a
 * posix_spawn_file_actions_t. */
int runner_spawn_file_actions_addclosefrom(void *actions, int from);

/* memfd_create(name, MFD_CLOEXEC): an anonymous file in memory (close-on-exec). */
int runner_memfd(const char *name);

/* Blocks SIGINT and SIGTERM for the calling thread and returns a signalfd (close-on-exec,
 * blocking) that reads them: each read gives one 128-byte signalfd_siginfo, its first four bytes
 * the signal's number. -1 with errno on failure (the mask is then unchanged). */
int runner_stop_signalfd(void);
#endif
