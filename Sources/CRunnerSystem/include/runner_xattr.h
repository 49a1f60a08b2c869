#ifndef RUNNER_XATTR_H
#define RUNNER_XATTR_H
/* Extended attributes by descriptor (<sys/xattr.h>, which Swift's Glibc module does not expose).
 * Each wrapper returns what the call returns and leaves errno set on failure. */
#include <stddef.h>
#include <sys/types.h>

/* fgetxattr(fd, name, value, size). */
ssize_t runner_fgetxattr(int fd, const char *name, void *value, size_t size);

/* fsetxattr(fd, name, value, size, flags). */
int runner_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags);

#endif
