/* Posts between loops (net_loop_post): every post runs once, on the loop's
 * own thread, in the order each thread posted; a post still queued is not
 * queued twice; a closed loop refuses posts; worker threads see their own
 * loop as current. Pool work (net_work_submit) is counted while it waits
 * for a thread. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "net/net.h"

#define POSTERS 4
#define POSTS   20000

struct item {
	struct net_post post;
	int thread, seq;
};

static uv_loop_t *target;
static atomic_int ran, wrong_thread, out_of_order;
static int last_seq[POSTERS];
static struct item items[POSTERS][POSTS];

static void open_loop(uv_loop_t *loop)
{
	cr_assert_eq(uv_loop_init(loop), 0);
	cr_assert_eq(net_loop_init(loop), 0);
}

/* Runs what was posted so far (an idle loop would not poll). */
static void run_posted(uv_loop_t *loop, int times)
{
	net_loop_keep_alive(loop, true);
	for (int i = 0; i < times; i++)
		uv_run(loop, UV_RUN_NOWAIT);
	net_loop_keep_alive(loop, false);
}

/* Closes loop after its posts and pool work are done. */
static void close_loop(uv_loop_t *loop)
{
	net_loop_close(loop);
	uv_run(loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(loop), 0);
}

static void item_cb(struct net_post *p)
{
	struct item *it = (struct item *)p;
	if (net_loop_current() != target)
		atomic_fetch_add(&wrong_thread, 1);
	if (it->seq != last_seq[it->thread] + 1)
		atomic_fetch_add(&out_of_order, 1);
	last_seq[it->thread] = it->seq;
	if (atomic_fetch_add(&ran, 1) + 1 == POSTERS * POSTS)
		net_loop_keep_alive(target, false);
}

static void *poster(void *arg)
{
	int t = (int)(intptr_t)arg;
	for (int i = 0; i < POSTS; i++) {
		items[t][i] = (struct item){.post.fn = item_cb, .thread = t, .seq = i};
		if (net_loop_post(target, &items[t][i].post) != 0)
			return (void *)1;
	}
	return NULL;
}

Test(net_post, every_post_runs_once_on_its_loop_in_order)
{
	uv_loop_t loop;
	open_loop(&loop);
	target = &loop;
	for (int t = 0; t < POSTERS; t++)
		last_seq[t] = -1;
	net_loop_keep_alive(&loop, true);
	pthread_t th[POSTERS];
	for (int t = 0; t < POSTERS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, poster, (void *)(intptr_t)t), 0);
	net_loop_run(&loop); /* ends when the last post let the loop go */
	for (int t = 0; t < POSTERS; t++) {
		void *rc;
		pthread_join(th[t], &rc);
		cr_assert_null(rc);
	}
	cr_assert_eq(atomic_load(&ran), POSTERS * POSTS);
	cr_assert_eq(atomic_load(&wrong_thread), 0);
	cr_assert_eq(atomic_load(&out_of_order), 0);
	close_loop(&loop);
}

static int count_cb_runs;

static void count_cb(struct net_post *p)
{
	(void)p;
	count_cb_runs++;
}

Test(net_post, queued_twice_runs_once_and_closed_loop_refuses)
{
	uv_loop_t loop;
	open_loop(&loop);
	struct net_post p = {.fn = count_cb};
	cr_assert_eq(net_loop_post(&loop, &p), 0);
	cr_assert_eq(net_loop_post(&loop, &p), 0); /* still queued: not again */
	run_posted(&loop, 1);
	cr_assert_eq(count_cb_runs, 1);
	cr_assert_eq(net_loop_post(&loop, &p), 0); /* ran: may be queued anew */
	/* Closing runs what is queued, then refuses. */
	net_loop_close(&loop);
	cr_assert_eq(count_cb_runs, 2);
	cr_assert_eq(net_loop_post(&loop, &p), -EPIPE);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

struct worker_seen {
	uv_loop_t loop;
	uv_loop_t *seen;
	struct net_post stop;
};

static void stop_cb(struct net_post *p)
{
	struct worker_seen *w =
	        (struct worker_seen *)((char *)p - offsetof(struct worker_seen, stop));
	w->seen = net_loop_current();
	net_loop_keep_alive(&w->loop, false);
}

static void *run_worker(void *arg)
{
	struct worker_seen *w = arg;
	net_loop_run(&w->loop);
	return NULL;
}

Test(net_post, a_worker_thread_sees_its_own_loop)
{
	static struct worker_seen w;
	open_loop(&w.loop);
	w.stop.fn = stop_cb;
	net_loop_keep_alive(&w.loop, true);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, run_worker, &w), 0);
	cr_assert_eq(net_loop_post(&w.loop, &w.stop), 0);
	pthread_join(th, NULL);
	cr_assert_eq(w.seen, &w.loop);
	close_loop(&w.loop);
}

/* Pool work: net_work_queued() counts work that no pool thread has started
 * (a sweep gives its thread back when it sees some), net_work_in_flight()
 * work whose done has not returned. With the pool's one thread held by a
 * first job, a second job waits, and is counted, until the first ends. */
static atomic_bool hold_started, hold_release;
static int works_done, counted_runs;

static void hold_work(void *data)
{
	(void)data;
	atomic_store(&hold_started, true);
	/* At most 10 s: a failed assertion must not leave libuv's exit
	 * waiting for this thread. */
	for (int i = 0; i < 10000 && !atomic_load(&hold_release); i++)
		usleep(1000);
}

static void count_work(void *data)
{
	(void)data;
	counted_runs++;
}

static void work_done(void *data, int status)
{
	(void)data;
	cr_assert_eq(status, 0);
	works_done++;
}

Test(net_post, work_waiting_for_a_pool_thread_is_counted_until_it_starts)
{
	/* Read by libuv when its pool starts: this test's process has one. */
	cr_assert_eq(setenv("UV_THREADPOOL_SIZE", "1", 1), 0);
	uv_loop_t loop;
	open_loop(&loop);
	cr_assert_eq(net_work_queued(), 0);
	cr_assert_eq(net_work_submit(&loop, hold_work, work_done, NULL), 0);
	while (!atomic_load(&hold_started))
		usleep(1000);
	cr_assert_eq(net_work_queued(), 0);
	cr_assert_eq(net_work_in_flight(), 1);
	cr_assert_eq(net_work_submit(&loop, count_work, work_done, NULL), 0);
	cr_assert_eq(net_work_queued(), 1);
	cr_assert_eq(net_work_in_flight(), 2);
	usleep(20000); /* the only thread is held: it still waits */
	cr_assert_eq(net_work_queued(), 1);
	cr_assert_eq(counted_runs, 0);
	atomic_store(&hold_release, true);
	net_loop_close(&loop);
	uv_run(&loop, UV_RUN_DEFAULT); /* until both jobs are done */
	cr_assert_eq(works_done, 2);
	cr_assert_eq(counted_runs, 1);
	cr_assert_eq(net_work_queued(), 0);
	cr_assert_eq(net_work_in_flight(), 0);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

/* A post queued again while the loop runs its batch of posts (from its own
 * thread, as here, or from another) must not cut that batch short: the
 * posts behind it were lost, and a session waiting for one of them waited
 * until its connection closed. X, queued before A and B, posts A again:
 * A is still queued (it has not run), so it runs once, and B runs. */
static struct net_post post_x, post_a, post_b;
static int ran_a, ran_b;
static uv_loop_t *batch_loop;

static void x_cb(struct net_post *p)
{
	(void)p;
	cr_assert_eq(net_loop_post(batch_loop, &post_a), 0);
}

static void a_cb(struct net_post *p)
{
	(void)p;
	ran_a++;
}

static void b_cb(struct net_post *p)
{
	(void)p;
	ran_b++;
}

Test(net_post, a_post_queued_again_does_not_drop_the_ones_behind_it)
{
	uv_loop_t loop;
	open_loop(&loop);
	batch_loop = &loop;
	post_x.fn = x_cb;
	post_a.fn = a_cb;
	post_b.fn = b_cb;
	cr_assert_eq(net_loop_post(&loop, &post_x), 0);
	cr_assert_eq(net_loop_post(&loop, &post_a), 0);
	cr_assert_eq(net_loop_post(&loop, &post_b), 0);
	run_posted(&loop, 4);
	cr_assert_eq(ran_b, 1, "B ran %d times", ran_b);
	cr_assert_eq(ran_a, 1, "A ran %d times", ran_a);
	close_loop(&loop);
}
