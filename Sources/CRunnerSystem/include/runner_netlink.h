#ifndef RUNNER_NETLINK_H
#define RUNNER_NETLINK_H
/* A NETLINK_ROUTE socket in another network namespace. A socket belongs to the namespace it was
 * made in for its whole life, so one made by a short-lived thread that entered `netns_fd` (a
 * /proc/PID/ns/net descriptor) talks to that namespace's kernel tables from any thread of ours,
 * while no thread of ours stays in the guest's namespace. Returns the socket (close-on-exec) or -1
 * with errno (setns's or socket's; EAGAIN when no thread could be made). */
#include <linux/netlink.h>

int runner_netlink_route_socket_in(int netns_fd);
#endif
