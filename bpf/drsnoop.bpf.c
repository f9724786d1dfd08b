// SPDX-License-Identifier: GPL-2.0
/*
 * drsnoop: one event per direct reclaim (an allocating task freeing memory
 * itself, vmscan:mm_vmscan_direct_reclaim_begin/end) and, with --memcg, per
 * memory-cgroup limit reclaim (mm_vmscan_memcg_reclaim_begin/end: a task
 * charging a cgroup over its limit). Begin applies the filters and remembers
 * the time, order and gfp flags by thread; end reports the latency and the
 * pages reclaimed.
 *
 * One start slot per thread serves both kinds: they never nest, since each
 * reclaims with PF_MEMALLOC set, under which neither starts again.
 */
#include "snoop.bpf.h"

const volatile u64 min_ns = 0;		/* --min-ms */

enum reclaim_kind { RECLAIM_DIRECT, RECLAIM_MEMCG };

struct start {
	u64 ts_ns;
	u64 gfp_flags;
	s32 order;
	enum reclaim_kind kind;
};

struct event {
	struct task_head task;	/* ts_ns is the time of begin */
	u64 lat_ns;
	u64 nr_reclaimed;
	u64 gfp_flags;
	s32 order;
	enum reclaim_kind kind;	/* user space: "direct" or "memcg" */
};

SNOOP_STARTS(struct start);
SNOOP_EVENT(struct event);

static __always_inline int begin(u32 kind, s32 order, u64 gfp_flags)
{
	struct start s = { .gfp_flags = gfp_flags, .order = order, .kind = kind };
	u32 tid;

	if (!should_trace())
		return 0;
	s.ts_ns = bpf_ktime_get_ns();
	tid = (u32)bpf_get_current_pid_tgid();
	start_save(tid, &s);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_begin")
int direct_begin(struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template *ctx)
{
	return begin(RECLAIM_DIRECT, ctx->order, ctx->gfp_flags);
}

/* same record layout as direct reclaim's (one event class) */
SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_begin")
int memcg_begin(struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template *ctx)
{
	return begin(RECLAIM_MEMCG, ctx->order, ctx->gfp_flags);
}

/*
 * Both kinds' end: one program, which the driver also attaches to
 * mm_vmscan_memcg_reclaim_end with --memcg. The kind is the begin's.
 */
SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_end")
int reclaim_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	struct event e = {};
	struct start s;

	if (!start_take((u32)bpf_get_current_pid_tgid(), &s) ||
	    !timed_head(&e.task, &e.lat_ns, s.ts_ns, min_ns))
		return 0;
	e.nr_reclaimed = ctx->nr_reclaimed;
	e.gfp_flags = s.gfp_flags;
	e.order = s.order;
	e.kind = s.kind;
	emit(ctx, &e, sizeof(e));
	return 0;
}
