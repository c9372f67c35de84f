/* The admin HTTP endpoint on the event loop: /metrics, /status, /health. */
#ifndef VECGATE_ADMIN_ENDPOINT_H
#define VECGATE_ADMIN_ENDPOINT_H

#include <uv.h>

#include "admin/http.h"

struct admin_endpoint;

/* Listens on host:port; NULL with *err (a libuv error) on failure. The hooks
 * are copied. */
struct admin_endpoint *admin_endpoint_start(uv_loop_t *loop, const char *host, int port,
                                            const struct admin_hooks *hooks, int *err);
/* Stops listening and closes open admin connections. */
void admin_endpoint_close(struct admin_endpoint *e);

#endif
