#define _GNU_SOURCE
#include "runner_netlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

struct runner_netlink_request {
    int netns_fd;
    int socket_fd;
    int error;
};

/* Runs on a thread of its own, which enters the namespace and ends there: no other thread's
 * namespace changes, and nothing runs in the guest's namespace after the socket is made. */
static void *runner_netlink_make(void *raw) {
    struct runner_netlink_request *request = raw;
    if (setns(request->netns_fd, CLONE_NEWNET) != 0) {
        request->error = errno;
        return 0;
    }
    request->socket_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (request->socket_fd < 0) request->error = errno;
    return 0;
}

int runner_netlink_route_socket_in(int netns_fd) {
    struct runner_netlink_request request = {netns_fd, -1, 0};
    pthread_t thread;
    int rc = pthread_create(&thread, 0, runner_netlink_make, &request);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    pthread_join(thread, 0);
    if (request.socket_fd < 0) errno = request.error;
    return request.socket_fd;
}
