#ifndef RUNNER_CLIBARCHIVE_SHIM_H
#define RUNNER_CLIBARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>

/* System calls the archive layer needs that Swift's Glibc module does not expose. */
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* renameat2(2) with RENAME_EXCHANGE / RENAME_NOREPLACE (Linux 3.15+), through syscall(2). */
#define RUNNER_RENAME_NOREPLACE (1U << 0)
#define RUNNER_RENAME_EXCHANGE (1U << 1)
static inline int runner_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                                   unsigned int flags) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

static inline dev_t runner_makedev(unsigned int major_, unsigned int minor_) { return makedev(major_, minor_); }
static inline unsigned int runner_major(dev_t dev) { return major(dev); }
static inline unsigned int runner_minor(dev_t dev) { return minor(dev); }
#endif
