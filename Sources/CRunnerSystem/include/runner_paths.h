#ifndef RUNNER_PATHS_H
#define RUNNER_PATHS_H
/* Linux system calls for resolving and mounting by descriptor, which Swift's Glibc module does not
 * expose (glibc 2.36 has no wrappers for openat2, and <linux/mount.h> clashes with <sys/mount.h>).
 * Each wrapper returns what the system call returns and leaves errno set on failure. */
#include <stdint.h>

/* openat2(2) `resolve` flags (<linux/openat2.h>). */
#define RUNNER_RESOLVE_NO_XDEV 0x01
#define RUNNER_RESOLVE_NO_MAGICLINKS 0x02
#define RUNNER_RESOLVE_NO_SYMLINKS 0x04
#define RUNNER_RESOLVE_BENEATH 0x08
#define RUNNER_RESOLVE_IN_ROOT 0x10

/* open_tree(2) and move_mount(2) flags (<linux/mount.h>). */
#define RUNNER_OPEN_TREE_CLONE 1
#define RUNNER_OPEN_TREE_CLOEXEC 02000000
#define RUNNER_AT_RECURSIVE 0x8000
#define RUNNER_MOVE_MOUNT_F_EMPTY_PATH 0x00000004

/* openat2(dirfd, path, {flags, mode, resolve}). */
int runner_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);

/* open_tree(dirfd, path, flags): with RUNNER_OPEN_TREE_CLONE, a detached copy of the mount at path. */
int runner_open_tree(int dirfd, const char *path, unsigned int flags);

/* move_mount(from_dirfd, from_path, to_dirfd, to_path, flags). */
int runner_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path, unsigned int flags);

#endif
