#ifndef RUNNER_PROCESS_H
#define RUNNER_PROCESS_H
/* Process descriptors (pidfd), which Swift's Glibc module does not expose: signalling through a
 * descriptor never reaches a process that took over a recycled PID. Each wrapper returns what
 * the system call returns and leaves errno set on failure. */

/* pidfd_open(pid, 0): a descriptor for the process `pid` (close-on-exec). */
int runner_pidfd_open(int pid);

/* pidfd_send_signal(pidfd, sig, NULL, 0). */
int runner_pidfd_send_signal(int pidfd, int sig);

#endif
