/* Serves the admin HTTP routes over net connections: each request is parsed,
 * routed and answered in order; the connection closes unless kept alive. */
#include "admin/endpoint.h"

#include <stdlib.h>

#include "core/list.h"
#include "core/log.h"
#include "net/net.h"

struct admin_conn {
	struct admin_endpoint *e;
	struct net_conn *c;
	struct list_node link; /* on e->conns */
};

struct admin_endpoint {
	struct net_listener *l;
	struct admin_hooks hooks;
	struct list_node conns;
	bool closing;
};

static void unlink_conn(struct admin_conn *ac)
{
	list_remove(&ac->link);
}

static void serve(struct admin_conn *ac)
{
	struct net_conn *c = ac->c;
	struct buf out;
	buf_init(&out);
	bool close_after = false;
	while (buf_unread(&c->in) > 0) {
		struct admin_req req;
		ssize_t n = admin_http_parse(buf_head(&c->in), buf_unread(&c->in), &req);
		if (n == 0)
			break;
		int rc;
		if (n < 0) {
			rc = admin_http_error(&out, n);
			close_after = true;
		} else {
			rc = admin_route(&req, &out, &ac->e->hooks);
			buf_consume(&c->in, (size_t)n);
			close_after = !req.keep_alive;
		}
		if (rc < 0 || close_after)
			break;
	}
	if (out.len > 0 && net_write(c, out.data, out.len) < 0)
		close_after = true;
	buf_free(&out);
	if (close_after)
		net_close(c);
}

static void conn_cb(struct net_conn *c, enum net_event ev, int status)
{
	struct admin_conn *ac = c->data;
	switch (ev) {
	case NET_EV_DATA:
		serve(ac);
		break;
	case NET_EV_EOF:
		net_close(c);
		break;
	case NET_EV_CLOSED:
		unlink_conn(ac);
		free(ac);
		break;
	default:
		break;
	}
}

static void accept_cb(struct net_listener *l, struct net_conn *c)
{
	struct admin_endpoint *e = net_listener_data(l);
	struct admin_conn *ac = calloc(1, sizeof(*ac));
	if (!ac) {
		net_close(c);
		return;
	}
	ac->e = e;
	ac->c = c;
	list_push_front(&e->conns, &ac->link);
	c->cb = conn_cb;
	c->data = ac;
}

struct admin_endpoint *admin_endpoint_start(uv_loop_t *loop, const char *host, int port,
                                            const struct admin_hooks *hooks, int *err)
{
	struct admin_endpoint *e = calloc(1, sizeof(*e));
	if (!e) {
		*err = UV_ENOMEM;
		return NULL;
	}
	e->hooks = *hooks;
	list_init(&e->conns);
	e->l = net_listen(loop, host, port, 64, false, accept_cb, e, err);
	if (!e->l) {
		free(e);
		return NULL;
	}
	log_info("admin endpoint on http://%s:%d/ (/metrics, /status, /health)", host, port);
	return e;
}

void admin_endpoint_close(struct admin_endpoint *e)
{
	net_listener_close(e->l);
	/* Connections free themselves on NET_EV_CLOSED; the endpoint struct has
	 * no other owner, and no callback refers to it after the conns close. */
	struct admin_conn *ac;
	while ((ac = list_entry(list_first(&e->conns), struct admin_conn, link))) {
		unlink_conn(ac);
		ac->c->cb = NULL;
		net_close(ac->c);
		free(ac);
	}
	free(e);
}
