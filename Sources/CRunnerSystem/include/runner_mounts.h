#ifndef RUNNER_MOUNTS_H
#define RUNNER_MOUNTS_H
/* mount_setattr(2) and the flags the bind staging uses, which Swift's Glibc module does not expose
 * (<linux/mount.h> clashes with <sys/mount.h>), and the GNU flags Swift does not import. Each wrapper returns what the system call returns
 * and leaves errno set on failure. */
#include <stdint.h>

/* mount_setattr(2) attributes (<linux/mount.h>). */
#define RUNNER_MOUNT_ATTR_RDONLY 0x00000001
#define RUNNER_MOUNT_ATTR_NOSUID 0x00000002
#define RUNNER_MOUNT_ATTR_NODEV 0x00000004

/* O_PATH and AT_EMPTY_PATH (<fcntl.h>, _GNU_SOURCE), MNT_DETACH and UMOUNT_NOFOLLOW (<sys/mount.h>). */
#define RUNNER_O_PATH 010000000
#define RUNNER_AT_EMPTY_PATH 0x1000
#define RUNNER_MNT_DETACH 2
#define RUNNER_UMOUNT_NOFOLLOW 8

/* move_mount(2): the target is the descriptor itself (<linux/mount.h>). */
#define RUNNER_MOVE_MOUNT_T_EMPTY_PATH 0x00000040

/* mount_setattr(dirfd, path, flags, {attr_set, attr_clr, 0, 0}): sets `set` and clears `clear`
 * on the mount at path (with AT_RECURSIVE, on every mount below it too). */
int runner_mount_setattr(int dirfd, const char *path, unsigned int flags, uint64_t set, uint64_t clear);

/* renameat2(2)'s RENAME_EXCHANGE: swaps two names atomically (the red-team tests race the
 * helper with it, as an attacker would). */
#define RUNNER_RENAME_EXCHANGE 2

/* renameat2(olddirfd, oldpath, newdirfd, newpath, flags). */
int runner_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);

#endif
