/* core/list.h and core/clock.h: order, removal during a walk, container_of,
 * an unlinked node removed twice, the clock never going back. */
#include <criterion/criterion.h>

#include "core/clock.h"
#include "core/list.h"

struct item {
	int v;
	struct list_node link;
};

static int values(struct list_node *head, int *out, int max)
{
	int n = 0;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, head)
	{
		cr_assert_lt(n, max);
		out[n++] = container_of(pos, struct item, link)->v;
	}
	return n;
}

Test(core_list, order_and_removal)
{
	struct list_node head;
	list_init(&head);
	cr_assert(list_empty(&head));
	cr_assert_null(list_first(&head));
	struct item it[5];
	for (int i = 0; i < 5; i++) {
		it[i].v = i;
		list_init(&it[i].link);
		cr_assert_not(list_linked(&it[i].link));
	}
	list_push_back(&head, &it[1].link);
	list_push_back(&head, &it[2].link);
	list_push_front(&head, &it[0].link);
	list_push_back(&head, &it[3].link);
	int out[8];
	cr_assert_eq(values(&head, out, 8), 4);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(out[i], i);
	cr_assert_eq(list_entry(list_first(&head), struct item, link), &it[0]);
	/* Removing the current node inside a walk. */
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &head)
	{
		if (container_of(pos, struct item, link)->v % 2 == 0)
			list_remove(pos);
	}
	cr_assert_eq(values(&head, out, 8), 2);
	cr_assert_eq(out[0], 1);
	cr_assert_eq(out[1], 3);
	cr_assert_not(list_linked(&it[0].link));
	list_remove(&it[0].link); /* twice: harmless */
	cr_assert_eq(values(&head, out, 8), 2);
	list_remove(&it[1].link);
	list_remove(&it[3].link);
	cr_assert(list_empty(&head));
	cr_assert_null(list_entry(list_first(&head), struct item, link));
}

Test(core_clock, monotonic)
{
	uint64_t a = core_now_ns(), ms = core_now_ms();
	uint64_t b = core_now_ns();
	cr_assert_geq(b, a);
	cr_assert_geq(ms, a / 1000000u);
	cr_assert_leq(ms, b / 1000000u);
}
