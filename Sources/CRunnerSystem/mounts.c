#define _GNU_SOURCE
#include "runner_mounts.h"

#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442 /* the same number on every architecture since Linux 5.12 */
#endif

struct runner_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

int runner_mount_setattr(int dirfd, const char *path, unsigned int flags, uint64_t set, uint64_t clear) {
    struct runner_mount_attr attr = {.attr_set = set, .attr_clr = clear, .propagation = 0, .userns_fd = 0};
    return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof(attr));
}

int runner_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}
