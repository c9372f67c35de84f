/* TCP streams on libuv with optional TLS through OpenSSL: reads decrypt into
 * c->in, writes queue plaintext in c->out and are encrypted and sent once per
 * loop iteration (the h2o approach). OpenSSL reads and writes ciphertext
 * through a BIO of net's own (see "the connection's BIO" below). */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define READ_CHUNK (64 * 1024)

struct net_loop {
	uv_prepare_t prepare;
	struct net_conn *dirty;
	/* Posts from other threads (net_loop_post), first in, first run. */
	uv_async_t async;
	pthread_mutex_t post_mu;
	struct net_post *post_head, **post_tail;
	bool post_closed;
	int open_handles; /* prepare and async: freed when both are closed */
	char rbuf[READ_CHUNK];
};

static _Thread_local uv_loop_t *current_loop;
static atomic_size_t work_in_flight;
static atomic_size_t work_queued; /* submitted, not yet started on a thread */

struct write_req {
	uv_write_t req;
	struct net_conn *c;
	size_t len;
	uint8_t data[];
};

struct net_listener {
	uv_tcp_t tcp;
	net_accept_cb cb;
	void *data;
};

struct connect_req {
	uv_getaddrinfo_t gai;
	uv_connect_t conn;
	struct net_conn *c;
	int port;
};

static void flush_conn(struct net_conn *c);
static void tls_pump(struct net_conn *c);
static void mark_dirty(struct net_conn *c);
static void emit(struct net_conn *c, enum net_event ev, int status);

static struct net_loop *loop_state(uv_loop_t *loop)
{
	return loop->data;
}

static void prepare_cb(uv_prepare_t *h)
{
	struct net_loop *nl = h->data;
	/* Flushing may queue nothing new, but an event callback run by a flush
	 * (an error) can mark others dirty: take the list one entry at a time. */
	while (nl->dirty) {
		struct net_conn *c = nl->dirty;
		nl->dirty = c->dirty_next;
		if (c->dirty_next)
			c->dirty_next->dirty_pprev = &nl->dirty;
		c->dirty_next = NULL;
		c->dirty_pprev = NULL;
		flush_conn(c);
		if (c->notify_drain && c->queued == 0 && !c->closing && !c->eof_sent) {
			c->notify_drain = false;
			emit(c, NET_EV_DRAINED, 0);
		}
	}
}

void net_notify_drained(struct net_conn *c)
{
	c->notify_drain = true;
	/* The flush pass looks at c once more, and reports if nothing waits. */
	mark_dirty(c);
}

/* Runs what other threads posted, each in the order posted; a post queued
 * while these run waits for the next wake-up (the async fires again). Each
 * is taken off the batch under the lock, its next read before its queued
 * flag clears: from then on it may be posted again (from any thread, or by
 * a post's own call), which starts the loop's new list and sets its next
 * to NULL. (The flags used to clear for the whole batch at once: a post
 * queued again before its turn cut the batch short there, and the posts
 * behind it were lost, a session's wake-up among them: test_net_post.c.) */
static void run_posts(struct net_loop *nl)
{
	pthread_mutex_lock(&nl->post_mu);
	struct net_post *p = nl->post_head;
	nl->post_head = NULL;
	nl->post_tail = &nl->post_head;
	while (p) {
		struct net_post *next = p->next;
		p->next = NULL;
		p->queued = false;
		pthread_mutex_unlock(&nl->post_mu);
		p->fn(p);
		pthread_mutex_lock(&nl->post_mu);
		p = next;
	}
	pthread_mutex_unlock(&nl->post_mu);
}

static void async_cb(uv_async_t *h)
{
	run_posts(h->data);
}

int net_loop_init(uv_loop_t *loop)
{
	struct net_loop *nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	int rc = uv_async_init(loop, &nl->async, async_cb);
	if (rc < 0) {
		free(nl);
		return rc;
	}
	/* uv_prepare_init cannot fail on a loop that exists. */
	uv_prepare_init(loop, &nl->prepare);
	pthread_mutex_init(&nl->post_mu, NULL);
	nl->post_tail = &nl->post_head;
	nl->open_handles = 2;
	nl->async.data = nl;
	uv_unref((uv_handle_t *)&nl->async);
	nl->prepare.data = nl;
	uv_prepare_start(&nl->prepare, prepare_cb);
	uv_unref((uv_handle_t *)&nl->prepare);
	loop->data = nl;
	if (!current_loop)
		current_loop = loop;
	return 0;
}

uv_loop_t *net_loop_current(void)
{
	return current_loop;
}

bool net_loop_is_current(const uv_loop_t *loop)
{
	return !current_loop || current_loop == loop;
}

int net_loop_run(uv_loop_t *loop)
{
	current_loop = loop;
	int rc = uv_run(loop, UV_RUN_DEFAULT);
	current_loop = NULL;
	return rc;
}

int net_loop_post(uv_loop_t *loop, struct net_post *p)
{
	struct net_loop *nl = loop_state(loop);
	if (!nl)
		return -EPIPE;
	pthread_mutex_lock(&nl->post_mu);
	if (nl->post_closed) {
		pthread_mutex_unlock(&nl->post_mu);
		return -EPIPE;
	}
	if (!p->queued) {
		p->queued = true;
		p->next = NULL;
		*nl->post_tail = p;
		nl->post_tail = &p->next;
	}
	uv_async_send(&nl->async);
	pthread_mutex_unlock(&nl->post_mu);
	return 0;
}

void net_loop_keep_alive(uv_loop_t *loop, bool on)
{
	struct net_loop *nl = loop_state(loop);
	if (!nl)
		return;
	if (on)
		uv_ref((uv_handle_t *)&nl->async);
	else
		uv_unref((uv_handle_t *)&nl->async);
}

static void free_loop_cb(uv_handle_t *h)
{
	struct net_loop *nl = h->data;
	if (--nl->open_handles > 0)
		return;
	pthread_mutex_destroy(&nl->post_mu);
	free(nl);
}

void net_loop_close(uv_loop_t *loop)
{
	struct net_loop *nl = loop_state(loop);
	if (!nl)
		return;
	/* What was posted before the close still runs; later posts fail. */
	run_posts(nl);
	pthread_mutex_lock(&nl->post_mu);
	nl->post_closed = true;
	pthread_mutex_unlock(&nl->post_mu);
	run_posts(nl);
	loop->data = NULL;
	if (current_loop == loop)
		current_loop = NULL;
	uv_close((uv_handle_t *)&nl->prepare, free_loop_cb);
	uv_close((uv_handle_t *)&nl->async, free_loop_cb);
}

static void mark_dirty(struct net_conn *c)
{
	if (c->dirty_pprev)
		return;
	struct net_loop *nl = loop_state(c->loop);
	c->dirty_next = nl->dirty;
	if (nl->dirty)
		nl->dirty->dirty_pprev = &c->dirty_next;
	nl->dirty = c;
	c->dirty_pprev = &nl->dirty;
}

static void unmark_dirty(struct net_conn *c)
{
	if (!c->dirty_pprev)
		return;
	*c->dirty_pprev = c->dirty_next;
	if (c->dirty_next)
		c->dirty_next->dirty_pprev = c->dirty_pprev;
	c->dirty_next = NULL;
	c->dirty_pprev = NULL;
}

static void emit(struct net_conn *c, enum net_event ev, int status)
{
	if (c->cb)
		c->cb(c, ev, status);
}

static void emit_eof(struct net_conn *c, int status)
{
	if (c->eof_sent || c->closing)
		return;
	c->eof_sent = true;
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	emit(c, NET_EV_EOF, status);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct net_loop *nl = loop_state(h->loop);
	b->base = nl->rbuf;
	b->len = sizeof(nl->rbuf);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct net_conn *c = s->data;
	if (n == 0 || c->closing)
		return;
	if (n < 0) {
		emit_eof(c, (int)n);
		return;
	}
	c->bytes_in += (uint64_t)n;
	if (c->tls == NET_TLS_NONE) {
		if (buf_append(&c->in, b->base, (size_t)n) < 0) {
			emit_eof(c, -ENOMEM);
			return;
		}
		emit(c, NET_EV_DATA, 0);
		return;
	}
	/* OpenSSL reads the chunk where libuv put it; only bytes it leaves
	 * (which follow earlier leftovers) are copied, as the loop's read
	 * buffer is reused by the next read. */
	if (buf_unread(&c->cin) == 0) {
		c->rd = (const uint8_t *)b->base;
		c->rd_len = (size_t)n;
	} else if (buf_append(&c->cin, b->base, (size_t)n) < 0) {
		emit_eof(c, -ENOMEM);
		return;
	}
	tls_pump(c);
	if (c->rd_len > 0) {
		int rc = c->closing ? 0 : buf_append(&c->cin, c->rd, c->rd_len);
		c->rd = NULL;
		c->rd_len = 0;
		if (rc < 0)
			emit_eof(c, -ENOMEM);
	}
}

static void start_reading(struct net_conn *c)
{
	if (c->reading || c->paused || c->closing || c->eof_sent)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
		c->reading = true;
}

void net_pause(struct net_conn *c)
{
	c->paused = true;
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

void net_resume(struct net_conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	start_reading(c);
	/* OpenSSL may hold decrypted records that arrived before the pause. */
	if (c->tls == NET_TLS_ON && (SSL_has_pending(c->ssl) || buf_unread(&c->cin) > 0))
		tls_pump(c);
}

static struct net_conn *conn_new(uv_loop_t *loop)
{
	struct net_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (uv_tcp_init(loop, &c->tcp) < 0) {
		free(c);
		return NULL;
	}
	c->loop = loop;
	c->tcp.data = c;
	buf_init(&c->in);
	buf_init(&c->out);
	buf_init(&c->cin);
	buf_init(&c->cout);
	return c;
}

static void set_peer(struct net_conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			uv_ip6_name(a, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
		} else {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			uv_ip4_name(a, ip, sizeof(ip));
			port = ntohs(a->sin_port);
		}
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
}

static void tune_socket(struct net_conn *c)
{
	uv_tcp_nodelay(&c->tcp, 1);
}

void net_keepalive(struct net_conn *c, unsigned secs)
{
	uv_tcp_keepalive(&c->tcp, secs > 0, secs);
}

/* ---- writing ---- */

static void write_cb(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct net_conn *c = w->c;
	c->queued -= w->len;
	free(w);
	if (c->closing)
		return;
	if (status < 0) {
		emit_eof(c, status);
		return;
	}
	if (c->queued == 0) {
		c->notify_drain = false;
		emit(c, NET_EV_DRAINED, 0);
	}
}

/* Sends ciphertext or plaintext bytes: straight to the kernel when nothing
 * is queued ahead of them, the rest copied into a write request. */
static int send_raw(struct net_conn *c, const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0;
	c->bytes_out += n;
	if (c->queued == 0) {
		uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
		int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (w == (int)n)
			return 0;
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w != UV_EAGAIN && w != UV_ENOSYS) {
			return w;
		}
	}
	struct write_req *wr = malloc(sizeof(*wr) + n);
	if (!wr)
		return -ENOMEM;
	wr->c = c;
	wr->len = n;
	memcpy(wr->data, p, n);
	uv_buf_t b = uv_buf_init((char *)wr->data, (unsigned)n);
	int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
	if (rc < 0) {
		free(wr);
		return rc;
	}
	c->queued += n;
	return 0;
}

/* Moves whatever OpenSSL has produced to the socket. */
static int flush_wbio(struct net_conn *c)
{
	size_t n = buf_unread(&c->cout);
	if (n == 0)
		return 0;
	int rc = send_raw(c, buf_head(&c->cout), n);
	buf_reset(&c->cout);
	return rc;
}

static void flush_conn(struct net_conn *c)
{
	if (c->closing || buf_unread(&c->out) == 0)
		return;
	int rc = 0;
	if (c->tls == NET_TLS_NONE) {
		rc = send_raw(c, buf_head(&c->out), buf_unread(&c->out));
	} else if (c->tls == NET_TLS_ON) {
		size_t n = buf_unread(&c->out);
		const uint8_t *p = buf_head(&c->out);
		while (n > 0 && rc == 0) {
			int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
			int w = SSL_write(c->ssl, p, chunk);
			if (w <= 0) {
				rc = -EPROTO;
				break;
			}
			p += w;
			n -= (size_t)w;
			/* Send per ~1 MiB so cout does not hold a whole large result. */
			if (buf_unread(&c->cout) > (1u << 20) || n == 0)
				rc = flush_wbio(c);
		}
	} else {
		return; /* plaintext waits for the handshake to finish */
	}
	buf_reset(&c->out);
	if (rc < 0)
		emit_eof(c, rc);
}

int net_write(struct net_conn *c, const void *p, size_t n)
{
	if (c->closing)
		return -EPIPE;
	int rc = buf_append(&c->out, p, n);
	if (rc == 0)
		mark_dirty(c);
	return rc;
}

void net_flush(struct net_conn *c)
{
	unmark_dirty(c);
	flush_conn(c);
}

/* ---- TLS ---- */

const char *net_tls_error(void)
{
	static _Thread_local char msg[256];
	unsigned long e = ERR_peek_last_error();
	if (!e)
		return "no TLS error recorded";
	ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return msg;
}

static void tls_read_app(struct net_conn *c)
{
	bool got = false;
	for (;;) {
		if (buf_reserve(&c->in, 16384) < 0) {
			emit_eof(c, -ENOMEM);
			return;
		}
		int r = SSL_read(c->ssl, c->in.data + c->in.len, (int)(c->in.cap - c->in.len));
		if (r > 0) {
			c->in.len += (size_t)r;
			got = true;
			/* SSL_read returns one record at most. Another call is made
			 * only when OpenSSL or the BIO still holds bytes: one that is
			 * sure to find nothing costs a pass through OpenSSL's record
			 * layer on every read event, before the data is handled. */
			if (!SSL_has_pending(c->ssl) && c->rd_len == 0 && buf_unread(&c->cin) == 0)
				break;
			continue;
		}
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			break;
		if (got)
			emit(c, NET_EV_DATA, 0);
		if (!c->closing)
			emit_eof(c, e == SSL_ERROR_ZERO_RETURN ? UV_EOF : -EPROTO);
		return;
	}
	/* TLS 1.3 tickets or key updates may have produced output. */
	if (flush_wbio(c) < 0) {
		emit_eof(c, -EPIPE);
		return;
	}
	if (got)
		emit(c, NET_EV_DATA, 0);
}

static void tls_pump(struct net_conn *c)
{
	if (c->tls == NET_TLS_HANDSHAKE) {
		int r = SSL_do_handshake(c->ssl);
		int flushed = flush_wbio(c);
		if (r == 1 && flushed == 0) {
			c->tls = NET_TLS_ON;
			emit(c, NET_EV_TLS_DONE, 0);
			if (c->closing)
				return;
			/* Plaintext queued during the handshake can go now. */
			if (buf_unread(&c->out))
				mark_dirty(c);
		} else {
			int e = SSL_get_error(c->ssl, r);
			if (flushed == 0 && (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE))
				return;
			emit(c, NET_EV_TLS_DONE, -EPROTO);
			return;
		}
	}
	if (c->tls == NET_TLS_ON && !c->closing)
		tls_read_app(c);
}

/* ---- the connection's BIO ----
 *
 * OpenSSL reads ciphertext straight from the chunk libuv has just read
 * (c->rd) or from what earlier chunks left (c->cin), and appends records to
 * c->cout, which flush_wbio() hands to the kernel. It replaces a pair of
 * memory BIOs, whose bookkeeping cost more than the copies themselves on a
 * relayed statement: a BUF_MEM grown and cleared on every write and reset,
 * and each of the ~36 BIO_ctrl calls OpenSSL and net made per statement
 * going through the memory BIO's own state. When empty, a read asks to be
 * retried, as the memory BIOs did (eof_return -1): the end of the stream
 * comes from the socket (read_cb), never from the BIO. */

static BIO_METHOD *conn_bio_method;
static CRYPTO_ONCE conn_bio_once = CRYPTO_ONCE_STATIC_INIT;

static int conn_bio_read(BIO *b, char *out, int len)
{
	struct net_conn *c = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	size_t want = len > 0 ? (size_t)len : 0;
	size_t n;
	if (c->rd_len > 0) {
		n = want < c->rd_len ? want : c->rd_len;
		memcpy(out, c->rd, n);
		c->rd += n;
		c->rd_len -= n;
	} else {
		size_t avail = buf_unread(&c->cin);
		n = want < avail ? want : avail;
		if (n > 0)
			memcpy(out, buf_head(&c->cin), n);
		buf_consume(&c->cin, n);
	}
	if (n == 0) {
		BIO_set_retry_read(b);
		return -1;
	}
	return (int)n;
}

static int conn_bio_write(BIO *b, const char *p, int len)
{
	struct net_conn *c = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	/* Out of memory is an error, not a retry: the write fails for good. */
	if (buf_append(&c->cout, p, (size_t)len) < 0)
		return -1;
	return len;
}

/* OpenSSL asks ~28 of these per relayed statement, most of them whether
 * the BIO does kTLS: the answer must stay cheap. */
static long conn_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	(void)ptr;
	const struct net_conn *c;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* records are sent at the loop's flush */
	case BIO_CTRL_PENDING:
		c = BIO_get_data(b);
		return c ? (long)(c->rd_len + buf_unread(&c->cin)) : 0;
	case BIO_CTRL_WPENDING:
		c = BIO_get_data(b);
		return c ? (long)buf_unread(&c->cout) : 0;
	default:
		return 0; /* no kTLS, no EOF of its own, nothing else */
	}
}

static int conn_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void conn_bio_setup(void)
{
	BIO_METHOD *m =
	        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "vecgate connection");
	if (m && BIO_meth_set_read(m, conn_bio_read) && BIO_meth_set_write(m, conn_bio_write) &&
	    BIO_meth_set_ctrl(m, conn_bio_ctrl) && BIO_meth_set_create(m, conn_bio_create)) {
		conn_bio_method = m;
		return;
	}
	BIO_meth_free(m);
}

static int tls_begin(struct net_conn *c, SSL_CTX *ctx)
{
	if (c->ssl)
		return -EALREADY;
	if (!CRYPTO_THREAD_run_once(&conn_bio_once, conn_bio_setup) || !conn_bio_method)
		return -ENOMEM;
	c->ssl = SSL_new(ctx);
	BIO *bio = BIO_new(conn_bio_method);
	if (!c->ssl || !bio) {
		BIO_free(bio);
		SSL_free(c->ssl);
		c->ssl = NULL;
		return -ENOMEM;
	}
	BIO_set_data(bio, c);
	/* One BIO both ways: SSL_set_bio takes the one reference. */
	SSL_set_bio(c->ssl, bio, bio);
	/* Read ahead: OpenSSL takes all the ciphertext there is in one BIO
	 * read, instead of a record's 5-byte header and then its body. */
	SSL_set_read_ahead(c->ssl, 1);
	c->tls = NET_TLS_HANDSHAKE;
	return 0;
}

int net_start_tls_server(struct net_conn *c, SSL_CTX *ctx)
{
	int rc = tls_begin(c, ctx);
	if (rc < 0)
		return rc;
	SSL_set_accept_state(c->ssl);
	size_t left = buf_unread(&c->in);
	if (left > 0) {
		if (buf_append(&c->cin, buf_head(&c->in), left) < 0)
			return -ENOMEM;
		buf_reset(&c->in);
		tls_pump(c);
	}
	return 0;
}

static bool is_ip_literal(const char *s)
{
	unsigned char tmp[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

/* A client context keeps no sessions itself: each new one (TLS 1.3 tickets
 * arrive after the handshake) goes to the connection's resume slot, so the
 * next connection to that server skips the full handshake. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct net_conn *c = SSL_get_app_data(ssl);
	if (!c || !c->resume)
		return 0;
	if (*c->resume)
		SSL_SESSION_free(*c->resume);
	*c->resume = sess;
	return 1; /* the slot keeps the reference */
}

void net_tls_session_free(void *session)
{
	SSL_SESSION_free(session);
}

bool net_tls_resumed(const struct net_conn *c)
{
	return c->tls == NET_TLS_ON && SSL_session_reused(c->ssl);
}

int net_start_tls_client(struct net_conn *c, SSL_CTX *ctx, const char *server_name, bool verify)
{
	int rc = tls_begin(c, ctx);
	if (rc < 0)
		return rc;
	SSL_set_connect_state(c->ssl);
	SSL_set_app_data(c->ssl, c);
	if (c->resume && *c->resume)
		SSL_set_session(c->ssl, *c->resume);
	if (server_name && *server_name) {
		bool ip = is_ip_literal(server_name);
		/* RFC 6066: SNI carries host names only, never addresses. */
		if (!ip)
			SSL_set_tlsext_host_name(c->ssl, server_name);
		if (verify) {
			X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
			X509_VERIFY_PARAM_set_hostflags(param,
			                                X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name)
			            : X509_VERIFY_PARAM_set1_host(param, server_name, 0);
			if (!ok)
				return -EINVAL;
		}
	}
	SSL_set_verify(c->ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	tls_pump(c);
	return 0;
}

const char *net_tls_version(const struct net_conn *c)
{
	return c->tls == NET_TLS_ON ? SSL_get_version(c->ssl) : "";
}

const char *net_tls_cipher(const struct net_conn *c)
{
	return c->tls == NET_TLS_ON ? SSL_get_cipher_name(c->ssl) : "";
}

static int min_proto(int minor)
{
	return minor >= 3 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

SSL_CTX *net_tls_server_ctx(const char *cert, const char *key, const char *ca,
                            int min_version_minor, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		goto failed;
	SSL_CTX_set_min_proto_version(ctx, min_proto(min_version_minor));
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "%s: %s", cert, net_tls_error());
		goto failed_msg;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "%s: %s", key, net_tls_error());
		goto failed_msg;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s does not match %s", key, cert);
		goto failed_msg;
	}
	if (ca && *ca) {
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			snprintf(err, errlen, "%s: %s", ca, net_tls_error());
			goto failed_msg;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
failed:
	snprintf(err, errlen, "%s", net_tls_error());
failed_msg:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *net_tls_client_ctx(const char *ca_file, bool verify, int min_version_minor,
                            const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		goto failed;
	SSL_CTX_set_min_proto_version(ctx, min_proto(min_version_minor));
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (ca_file && *ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			snprintf(err, errlen, "%s: %s", ca_file, net_tls_error());
			goto failed_msg;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		goto failed;
	}
	if (cert && *cert) {
		if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
			snprintf(err, errlen, "%s / %s: %s", cert, key ? key : "", net_tls_error());
			goto failed_msg;
		}
	}
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx,
	                               SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	return ctx;
failed:
	snprintf(err, errlen, "%s", net_tls_error());
failed_msg:
	SSL_CTX_free(ctx);
	return NULL;
}

void net_tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

/* ---- closing ---- */

static void close_cb(uv_handle_t *h)
{
	struct net_conn *c = h->data;
	emit(c, NET_EV_CLOSED, 0);
	if (c->ssl)
		SSL_set_app_data(c->ssl, NULL);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->cin);
	buf_free(&c->cout);
	SSL_free(c->ssl); /* frees the BIO */
	free(c);
}

void net_close(struct net_conn *c)
{
	if (c->closing)
		return;
	/* Send what the owner queued (an ERR packet, say) before closing. A
	 * flush error reports EOF to the owner, who may close re-entrantly. */
	unmark_dirty(c);
	flush_conn(c);
	if (c->closing)
		return;
	if (c->tls == NET_TLS_ON) {
		SSL_shutdown(c->ssl);
		(void)flush_wbio(c);
	}
	c->closing = true;
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	/* Bytes still queued belong to a peer that stopped reading: the close
	 * cancels them rather than waiting on that peer forever. */
	uv_close((uv_handle_t *)&c->tcp, close_cb);
}

/* ---- listening and connecting ---- */

static void accept_cb(uv_stream_t *server, int status)
{
	struct net_listener *l = server->data;
	if (status < 0)
		return;
	struct net_conn *c = conn_new(server->loop);
	if (!c)
		return;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		uv_close((uv_handle_t *)&c->tcp, close_cb);
		return;
	}
	tune_socket(c);
	set_peer(c);
	start_reading(c);
	l->cb(l, c);
}

/* A TCP socket bound to host:port (SO_REUSEADDR, and SO_REUSEPORT when
 * asked), not listening yet: its fd, or a negative errno. */
static int bound_socket(const char *host, int port, bool reuseport, int flags)
{
	struct sockaddr_storage ss;
	int rc;
	if ((rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss)) < 0 &&
	    (rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)) < 0)
		return rc;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	int one = 1;
	socklen_t alen =
	        ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, alen) < 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

int net_listen_check(const char *host, int port)
{
	int fd = bound_socket(host, port, false, 0);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

struct net_listener *net_listen(uv_loop_t *loop, const char *host, int port, int backlog,
                                bool reuseport, net_accept_cb cb, void *data, int *err)
{
	int rc;
	struct net_listener *l = calloc(1, sizeof(*l));
	if (!l) {
		*err = UV_ENOMEM;
		return NULL;
	}
	int fd = bound_socket(host, port, reuseport, SOCK_NONBLOCK);
	if (fd < 0) {
		*err = fd;
		free(l);
		return NULL;
	}
	uv_tcp_init(loop, &l->tcp);
	l->tcp.data = l;
	l->cb = cb;
	l->data = data;
	if ((rc = uv_tcp_open(&l->tcp, fd)) < 0 ||
	    (rc = uv_listen((uv_stream_t *)&l->tcp, backlog, accept_cb)) < 0) {
		*err = rc;
		net_listener_close(l);
		return NULL;
	}
	return l;
}

void *net_listener_data(struct net_listener *l)
{
	return l->data;
}

static void free_handle_cb(uv_handle_t *h)
{
	free(h->data);
}

void net_listener_close(struct net_listener *l)
{
	uv_close((uv_handle_t *)&l->tcp, free_handle_cb);
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct connect_req *cr = req->data;
	struct net_conn *c = cr->c;
	free(cr);
	if (c->closing)
		return;
	if (status == 0) {
		tune_socket(c);
		set_peer(c);
		start_reading(c);
	}
	emit(c, NET_EV_CONNECTED, status);
}

static void do_connect(struct connect_req *cr, const struct sockaddr *sa)
{
	cr->conn.data = cr;
	int rc = uv_tcp_connect(&cr->conn, &cr->c->tcp, sa, connect_cb);
	if (rc < 0) {
		struct net_conn *c = cr->c;
		free(cr);
		emit(c, NET_EV_CONNECTED, rc);
	}
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct connect_req *cr = req->data;
	if (cr->c->closing) {
		uv_freeaddrinfo(res);
		free(cr);
		return;
	}
	if (status < 0 || !res) {
		struct net_conn *c = cr->c;
		uv_freeaddrinfo(res);
		free(cr);
		emit(c, NET_EV_CONNECTED, status < 0 ? status : UV_EAI_NONAME);
		return;
	}
	struct sockaddr_storage ss;
	memcpy(&ss, res->ai_addr, res->ai_addrlen);
	uv_freeaddrinfo(res);
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)cr->port);
	else
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)cr->port);
	do_connect(cr, (struct sockaddr *)&ss);
}

static void deferred_connect_error_cb(uv_timer_t *t);

struct net_conn *net_connect(uv_loop_t *loop, const char *host, int port, net_event_cb cb,
                             void *data)
{
	struct net_conn *c = conn_new(loop);
	struct connect_req *cr = calloc(1, sizeof(*cr));
	if (!c || !cr) {
		if (c)
			uv_close((uv_handle_t *)&c->tcp, close_cb);
		free(cr);
		return NULL;
	}
	c->cb = cb;
	c->data = data;
	snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
	cr->c = c;
	cr->port = port;
	struct sockaddr_storage ss;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
		cr->conn.data = cr;
		if (uv_tcp_connect(&cr->conn, &c->tcp, (struct sockaddr *)&ss, connect_cb) == 0)
			return c;
	} else {
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
		cr->gai.data = cr;
		if (uv_getaddrinfo(loop, &cr->gai, resolved_cb, host, NULL, &hints) == 0)
			return c;
	}
	/* Report the failure from the loop, never from inside the caller. */
	free(cr);
	uv_timer_t *t = malloc(sizeof(*t));
	if (!t) {
		uv_close((uv_handle_t *)&c->tcp, close_cb);
		return NULL;
	}
	uv_timer_init(loop, t);
	t->data = c;
	uv_timer_start(t, deferred_connect_error_cb, 0, 0);
	return c;
}

static void free_timer_cb(uv_handle_t *h)
{
	free(h);
}

static void deferred_connect_error_cb(uv_timer_t *t)
{
	struct net_conn *c = t->data;
	uv_close((uv_handle_t *)t, free_timer_cb);
	if (!c->closing)
		emit(c, NET_EV_CONNECTED, UV_ECONNREFUSED);
}

/* ---- timers ---- */

static void timer_cb(uv_timer_t *h)
{
	struct net_timer *t = h->data;
	t->cb(t);
}

void net_timer_init(uv_loop_t *loop, struct net_timer *t, void (*cb)(struct net_timer *),
                    void *data)
{
	uv_timer_init(loop, &t->t);
	t->t.data = t;
	t->cb = cb;
	t->data = data;
	t->closing = false;
}

void net_timer_start(struct net_timer *t, uint64_t ms)
{
	if (!t->closing)
		uv_timer_start(&t->t, timer_cb, ms, 0);
}

void net_timer_stop(struct net_timer *t)
{
	uv_timer_stop(&t->t);
}

static void timer_closed_cb(uv_handle_t *h)
{
	struct net_timer *t = h->data;
	t->done(t);
}

void net_timer_close(struct net_timer *t, void (*done)(struct net_timer *))
{
	t->closing = true;
	t->done = done;
	uv_close((uv_handle_t *)&t->t, timer_closed_cb);
}

/* ---- thread pool ---- */

struct work_req {
	uv_work_t req;
	void (*work)(void *data);
	void (*done)(void *data, int status);
	void *data;
};

static void work_cb(uv_work_t *req)
{
	struct work_req *w = req->data;
	atomic_fetch_sub(&work_queued, 1);
	w->work(w->data);
}

static void after_work_cb(uv_work_t *req, int status)
{
	struct work_req *w = req->data;
	void (*done)(void *, int) = w->done;
	void *data = w->data;
	if (status == UV_ECANCELED)
		atomic_fetch_sub(&work_queued, 1); /* cancelled: it never ran */
	free(w);
	done(data, status);
	atomic_fetch_sub(&work_in_flight, 1);
}

int net_work_submit(uv_loop_t *loop, void (*work)(void *data), void (*done)(void *data, int status),
                    void *data)
{
	struct work_req *w = malloc(sizeof(*w));
	if (!w)
		return UV_ENOMEM;
	w->req.data = w;
	w->work = work;
	w->done = done;
	w->data = data;
	atomic_fetch_add(&work_in_flight, 1);
	atomic_fetch_add(&work_queued, 1);
	int rc = uv_queue_work(loop, &w->req, work_cb, after_work_cb);
	if (rc < 0) {
		atomic_fetch_sub(&work_queued, 1);
		atomic_fetch_sub(&work_in_flight, 1);
		free(w);
	}
	return rc;
}

size_t net_work_in_flight(void)
{
	return atomic_load(&work_in_flight);
}

size_t net_work_queued(void)
{
	return atomic_load(&work_queued);
}
