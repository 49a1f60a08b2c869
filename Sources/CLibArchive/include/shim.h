#ifndef RUNNER_CLIBARCHIVE_SHIM_H
#define RUNNER_CLIBARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#include <stddef.h>

/* libarchive is opened on first use (loader.c), not linked: a process that never touches an
 * archive never maps it. The archive layer calls runner_archive_load before its first libarchive
 * call; afterwards archive.h's functions work as if linked. */
#define RUNNER_ARCHIVE_SONAME "libarchive.so.13"

/* Loads RUNNER_ARCHIVE_SONAME once per process (later calls return the first outcome). Returns 0,
 * or -1 with the problem in `error` (without the library's name). Thread-safe. */
int runner_archive_load(char *error, size_t size);

/* Opens `soname`, checks that it has every function the archive layer calls, and closes it,
 * without touching the process's loaded libarchive. Returns 0, or -1 with a message in `error`. */
int runner_archive_probe(const char *soname, char *error, size_t size);

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

/* openat2(2) with RESOLVE_IN_ROOT (Linux 5.6+): resolve a path as if `dirfd` were `/`, symlinks
 * included, never leaving it. The OCI layer applier opens a layer entry's parent with it. */
#define RUNNER_ARCHIVE_RESOLVE_NO_XDEV 0x01
#define RUNNER_ARCHIVE_RESOLVE_NO_MAGICLINKS 0x02
#define RUNNER_ARCHIVE_RESOLVE_IN_ROOT 0x10
struct runner_archive_open_how {
    unsigned long long flags;
    unsigned long long mode;
    unsigned long long resolve;
};
static inline int runner_archive_openat2_in_root(int dirfd, const char *path, int flags) {
    struct runner_archive_open_how how = {(unsigned long long)flags, 0,
                                          RUNNER_ARCHIVE_RESOLVE_IN_ROOT | RUNNER_ARCHIVE_RESOLVE_NO_MAGICLINKS |
                                              RUNNER_ARCHIVE_RESOLVE_NO_XDEV};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

static inline dev_t runner_makedev(unsigned int major_, unsigned int minor_) { return makedev(major_, minor_); }
static inline unsigned int runner_major(dev_t dev) { return major(dev); }
static inline unsigned int runner_minor(dev_t dev) { return minor(dev); }
#endif
