/* workload.c: the list of workloads vecgate_bench knows. */
#include "workload.h"

#include <string.h>

const struct workload *const bench_workloads[] = {
        &wl_point, &wl_connect, &wl_sql, &wl_knn, &wl_mixed, NULL,
};

const struct workload *workload_find(const char *name)
{
	for (int i = 0; bench_workloads[i]; i++)
		if (strcmp(bench_workloads[i]->name, name) == 0)
			return bench_workloads[i];
	return NULL;
}
