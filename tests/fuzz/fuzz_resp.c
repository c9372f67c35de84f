/* The response tracker over a stream of server packets. The first bytes
 * choose the command (text and binary result sets, prepare, fetch, field
 * list, statistics, change user, anything else), the negotiated
 * capabilities, COM_STMT_EXECUTE's cursor flags, the status before it, and a
 * seed for where the stream is cut. The stream is framed and fed twice: whole,
 * and in chunks cut at the seed's points as a socket delivers it; both runs
 * must give the same answers packet by packet and the same final results.
 * After DONE or an error every further packet must be refused. */
#include "fuzz.h"

#include <errno.h>

#include "proto/mysql.h"
#include "proto/packet.h"
#include "proto/resp.h"

/* Large enough for every payload the fuzzer makes, small enough that the
 * framing's size limit is met too. */
#define MAX_PAYLOAD (64 * 1024)
#define MAX_FEEDS   4096

static const uint8_t commands[] = {
        PROTO_COM_QUERY,
        PROTO_COM_STMT_EXECUTE,
        PROTO_COM_STMT_FETCH,
        PROTO_COM_STMT_PREPARE,
        PROTO_COM_FIELD_LIST,
        PROTO_COM_STATISTICS,
        PROTO_COM_CHANGE_USER,
        PROTO_COM_PING,
        PROTO_COM_PROCESS_INFO,
        PROTO_COM_INIT_DB,
        PROTO_COM_STMT_RESET,
        PROTO_COM_SET_OPTION,
        PROTO_COM_RESET_CONNECTION,
        PROTO_COM_QUIT,
        PROTO_COM_DAEMON,
};

struct run {
	int rcs[MAX_FEEDS];
	size_t nfeeds;
	struct proto_resp r;
	bool stop; /* an error or too many packets */
};

static void check_results(const struct proto_resp *r)
{
	FUZZ_CHECK(r->result_sets <= r->results);
	if (r->is_err)
		FUZZ_CHECK(r->results_before_err <= r->results &&
		           !(r->status & PROTO_STATUS_MORE_RESULTS_EXISTS));
	if (r->rows)
		FUZZ_CHECK(r->result_sets > 0 || r->command == PROTO_COM_STMT_FETCH);
}

static void feed(struct run *run, const uint8_t *p, size_t n)
{
	if (run->stop)
		return;
	if (run->nfeeds == MAX_FEEDS) {
		run->stop = true;
		return;
	}
	bool was_done = run->r.state == PROTO_RESP_ST_DONE || run->r.state == PROTO_RESP_ST_BROKEN;
	uint64_t rows = run->r.rows;
	int rc = proto_resp_feed(&run->r, p, n);
	if (was_done)
		FUZZ_CHECK(rc == -EPROTO);
	FUZZ_CHECK(rc == PROTO_RESP_MORE || rc == PROTO_RESP_DONE || rc == PROTO_RESP_INFILE ||
	           rc == -EPROTO);
	FUZZ_CHECK(run->r.rows == rows ||
	           (run->r.rows == rows + 1 && run->r.role == PROTO_ROLE_ROW));
	run->rcs[run->nfeeds++] = rc;
	if (rc == PROTO_RESP_DONE) {
		FUZZ_CHECK(run->r.state == PROTO_RESP_ST_DONE);
		check_results(&run->r);
	}
	if (rc == PROTO_RESP_INFILE) {
		FUZZ_CHECK(run->r.state == PROTO_RESP_ST_INFILE);
		/* No server packet may come while the client sends the file. */
		struct proto_resp copy = run->r;
		FUZZ_CHECK(proto_resp_feed(&copy, p, n) == -EPROTO);
		FUZZ_CHECK(proto_resp_infile_done(&run->r) == 0);
	} else {
		struct proto_resp copy = run->r;
		FUZZ_CHECK(proto_resp_infile_done(&copy) == -EPROTO);
	}
}

/* Splits buffered bytes into logical packets as the session does and feeds
 * each complete one. Returns false once the framing is broken. */
static bool drain(struct run *run, struct buf *in, struct buf *payload)
{
	while (buf_unread(in) > 0) {
		struct proto_logical lp;
		ssize_t n = proto_scan_logical(buf_head(in), buf_unread(in), MAX_PAYLOAD, &lp);
		if (n == 0)
			return true;
		if (n < 0)
			return false;
		payload->len = 0;
		FUZZ_CHECK(proto_gather_payload(buf_head(in), &lp, payload) == 0);
		feed(run, payload->data, payload->len);
		buf_consume(in, (size_t)n);
	}
	return true;
}

static void start(struct run *run, uint8_t cmd, uint32_t caps, uint16_t status, uint8_t xflags)
{
	memset(run, 0, sizeof(*run));
	proto_resp_init(&run->r, status);
	uint8_t exec[10] = {cmd, 1, 0, 0, 0, xflags, 1, 0, 0, 0};
	proto_resp_start(&run->r, cmd, caps, exec, sizeof(exec));
	FUZZ_CHECK(run->r.state != PROTO_RESP_ST_BROKEN);
	FUZZ_CHECK(run->r.status == status);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t cmd = commands[fuzz_u8(&in) % sizeof(commands)];
	uint32_t caps = fuzz_u32(&in);
	uint8_t xflags = fuzz_u8(&in);
	uint16_t status = fuzz_u16(&in);
	uint32_t seed = fuzz_u32(&in) | 1;
	uint8_t max_chunk = fuzz_u8(&in);
	const uint8_t *s = in.p;
	size_t n = in.n;

	static struct run whole, chunked;
	struct buf buf, payload;
	buf_init(&buf);
	buf_init(&payload);

	start(&whole, cmd, caps, status, xflags);
	FUZZ_CHECK(buf_append(&buf, s, n) == 0);
	bool whole_ok = drain(&whole, &buf, &payload);

	start(&chunked, cmd, caps, status, xflags);
	buf_free(&buf);
	buf_init(&buf);
	bool chunked_ok = true;
	for (size_t pos = 0; pos < n && chunked_ok;) {
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		size_t k = 1 + seed % ((size_t)max_chunk + 1);
		if (k > n - pos)
			k = n - pos;
		FUZZ_CHECK(buf_append(&buf, s + pos, k) == 0);
		pos += k;
		chunked_ok = drain(&chunked, &buf, &payload);
	}

	FUZZ_CHECK(whole_ok == chunked_ok);
	FUZZ_CHECK(whole.nfeeds == chunked.nfeeds);
	FUZZ_CHECK(memcmp(whole.rcs, chunked.rcs, whole.nfeeds * sizeof(int)) == 0);
	FUZZ_CHECK(memcmp(&whole.r, &chunked.r, sizeof(whole.r)) == 0);

	/* A finished or broken tracker takes nothing more. */
	if (whole.r.state == PROTO_RESP_ST_DONE || whole.r.state == PROTO_RESP_ST_BROKEN) {
		static const uint8_t ok[] = {0, 0, 0, 2, 0, 0, 0};
		FUZZ_CHECK(proto_resp_feed(&whole.r, ok, sizeof(ok)) == -EPROTO);
	}
	buf_free(&buf);
	buf_free(&payload);
	return 0;
}
