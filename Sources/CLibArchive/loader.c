/* libarchive, loaded on first use.
 *
 * The archive layer calls libarchive by its own names (archive.h); this file defines those names
 * and forwards each call to the system's libarchive, which it opens with dlopen the first time
 * one is called. A process that never reads or writes an archive (most runner-agent calls: every
 * container hook call, the guest helper) never maps libarchive, nor what it pulls in (libxml2,
 * ICU and libstdc++, nettle, five compressors): that was most of the agent's start. libarchive
 * stays the system's shared library, so Debian's security updates still reach the parser of
 * hostile archives.
 *
 * The definitions are hidden: they never leave the executable (the toolchain exports its symbols
 * for backtraces), so libarchive's calls to its own functions still bind inside libarchive. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#pragma GCC visibility push(hidden)
#include "shim.h"
#pragma GCC visibility pop

struct runner_archive_table {
#define RUNNER_ARCHIVE_FUNCTION(ret, name, params, args) ret(*name) params;
#define RUNNER_ARCHIVE_VOID_FUNCTION(ret, name, params, args) ret(*name) params;
#include "functions.h"
#undef RUNNER_ARCHIVE_FUNCTION
#undef RUNNER_ARCHIVE_VOID_FUNCTION
};

/* Opens `soname` and resolves every function into `table`. On failure: -1, the library closed,
 * and what is wrong in `error` (the caller names the library). */
static int runner_archive_open(const char *soname, void **handle, struct runner_archive_table *table, char *error,
                               size_t size) {
    *handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (*handle == NULL) {
        const char *reason = dlerror();
        snprintf(error, size, "could not be loaded (%s)", reason ? reason : "unknown error");
        return -1;
    }
#define RUNNER_ARCHIVE_RESOLVE(name)                                                                \
    do {                                                                                            \
        *(void **)(&table->name) = dlsym(*handle, #name);                                           \
        if (table->name == NULL) {                                                                  \
            snprintf(error, size, "has no function %s (libarchive 3.6 or later is needed)", #name); \
            dlclose(*handle);                                                                       \
            *handle = NULL;                                                                         \
            return -1;                                                                              \
        }                                                                                           \
    } while (0);
#define RUNNER_ARCHIVE_FUNCTION(ret, name, params, args) RUNNER_ARCHIVE_RESOLVE(name)
#define RUNNER_ARCHIVE_VOID_FUNCTION(ret, name, params, args) RUNNER_ARCHIVE_RESOLVE(name)
#include "functions.h"
#undef RUNNER_ARCHIVE_FUNCTION
#undef RUNNER_ARCHIVE_VOID_FUNCTION
#undef RUNNER_ARCHIVE_RESOLVE
    return 0;
}

static struct runner_archive_table runner_archive;
static pthread_once_t runner_archive_once = PTHREAD_ONCE_INIT;
static int runner_archive_status = -1;
static char runner_archive_error[512];

static void runner_archive_load_once(void) {
    void *handle = NULL;
    runner_archive_status = runner_archive_open(RUNNER_ARCHIVE_SONAME, &handle, &runner_archive,
                                                runner_archive_error, sizeof(runner_archive_error));
}

int runner_archive_load(char *error, size_t size) {
    pthread_once(&runner_archive_once, runner_archive_load_once);
    if (runner_archive_status != 0 && error != NULL && size > 0) {
        snprintf(error, size, "%s", runner_archive_error);
    }
    return runner_archive_status;
}

int runner_archive_probe(const char *soname, char *error, size_t size) {
    struct runner_archive_table table;
    void *handle = NULL;
    if (runner_archive_open(soname, &handle, &table, error, size) != 0) {
        return -1;
    }
    dlclose(handle);
    return 0;
}

/* A call before a successful runner_archive_load: the Swift layer loads first and throws a clear
 * error, so reaching this is a bug; it still says what is missing before it stops. */
static void runner_archive_require(void) {
    char error[512];
    if (runner_archive_load(error, sizeof(error)) != 0) {
        fprintf(stderr, "runner: %s: %s\nfix: install libarchive 3.6 or later (Debian: apt-get install libarchive13)\n",
                RUNNER_ARCHIVE_SONAME, error);
        abort();
    }
}

#define RUNNER_ARCHIVE_FUNCTION(ret, name, params, args) \
    ret name params {                                     \
        runner_archive_require();                         \
        return runner_archive.name args;                  \
    }
#define RUNNER_ARCHIVE_VOID_FUNCTION(ret, name, params, args) \
    ret name params {                                          \
        runner_archive_require();                              \
        runner_archive.name args;                              \
    }
#include "functions.h"
#undef RUNNER_ARCHIVE_FUNCTION
#undef RUNNER_ARCHIVE_VOID_FUNCTION
