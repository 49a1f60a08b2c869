#ifndef RUNNER_CLIBARCHIVE_SHIM_H
#define RUNNER_CLIBARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#endif
