// SPDX-License-Identifier: GPL-2.0
/*
 * compactsnoop: one event per zone compaction run (compact_zone()): direct
 * compaction by an allocating task, kcompactd, or a write to
 * /proc/sys/vm/compact_memory. The raw tracepoints mm_compaction_begin and
 * mm_compaction_end both carry the run's struct compact_control, so begin
 * reads the zone, node, order and mode from it once with CO-RE (the classic
 * events spread those over mm_compaction_suitable, which a whole-zone run
 * never fires, and mm_compaction_finished, which fires once per scan step),
 * and end measures the latency and reports the result.
 */
#include "snoop.bpf.h"

#define MAX_ORDERS	16	/* bound for the free_area walk; NR_PAGE_ORDERS is 11 here */
#define ZONE_NAME_LEN	16

const volatile u64 min_ns = 0;		/* --min-ms */
const volatile bool extended = false;	/* -e: watermarks, free pages, fragmentation index */
const volatile bool kernel_stack = false;	/* -K */

#define MAX_STACK_DEPTH	127	/* PERF_MAX_STACK_DEPTH */

/* -K: the kernel stack of each run's end, by id (as BCC's 2048 stacks).
 * Equal stacks share an id; user space reads an event's stack once and
 * leaves it, since another event may share it. Without -K user space
 * makes this a one-slot array, which no program reaches. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 2048);
	__uint(key_size, sizeof(u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(u64));
} stacks SEC(".maps");

/* The result, in an order of our own: enum compact_result's numbering has
 * changed between kernels, so each value is matched by name (CO-RE). */
enum status {
	ST_NOT_SUITABLE_ZONE, ST_SKIPPED, ST_DEFERRED, ST_NO_SUITABLE_PAGE, ST_CONTINUE,
	ST_COMPLETE, ST_PARTIAL_SKIPPED, ST_CONTENDED, ST_SUCCESS, ST_UNKNOWN,
};

/* The zone as compaction found it (-e). */
struct zone_state {
	u64 wmark_min;		/* watermarks in pages, boost included (as /proc/zoneinfo) */
	u64 wmark_low;
	u64 wmark_high;
	u64 free_pages;		/* NR_FREE_PAGES */
	s32 fragidx;		/* fragmentation index x1000 for the order; order < 0: 0 */
};

struct start {
	u64 ts_ns;
	s32 node;
	s32 order;		/* -1: the whole zone (compact_memory, proactive) */
	u8 sync;
	char zone[ZONE_NAME_LEN];
	struct zone_state state;
};

struct event {
	struct task_head task;	/* ts_ns is the time of begin */
	u64 lat_ns;
	s32 node;
	s32 order;
	s32 kstatus;		/* the kernel's own value, for an unknown status */
	s32 stack_id;		/* -K: in stacks; < 0: not taken (-errno) */
	enum status status;	/* user space: "complete", ... ("unknown": see kstatus) */
	u8 sync;
	char zone[ZONE_NAME_LEN];
	struct zone_state state;
};

SNOOP_STARTS(struct start);
SNOOP_EVENT(struct event);

/*
 * The kernel's fragmentation_index(): 0 (a failing allocation of this order
 * lacks memory) to 1000 (it fails from fragmentation); -1000 when a free
 * block of the order exists. Recomputed from zone->free_area[], because no
 * probe returns it on a kernel without kprobes.
 */
static __always_inline s32 fragmentation_index(struct zone *zone, s32 requested)
{
	/* offsets and sizes of this kernel: struct free_area varies with config */
	u64 base = (u64)zone + bpf_core_field_offset(struct zone, free_area);
	u32 stride = bpf_core_type_size(struct free_area);
	u32 nr_free = bpf_core_field_offset(struct free_area, nr_free);
	u32 orders = bpf_core_field_size(struct zone, free_area) / stride;
	u64 free_pages = 0, blocks_total = 0, blocks_suitable = 0;
	u32 order = requested;

	if (requested < 0 || order >= orders)
		return 0;
	for (u32 i = 0; i < MAX_ORDERS && i < orders; i++) {
		unsigned long blocks = 0;

		bpf_probe_read_kernel(&blocks, sizeof(blocks), (void *)(base + i * stride + nr_free));
		blocks_total += blocks;
		free_pages += blocks << i;
		if (i >= order)
			blocks_suitable += blocks << (i - order);
	}
	if (!blocks_total)
		return 0;
	if (blocks_suitable)
		return -1000;
	return 1000 - (1000 + free_pages * 1000 / (1ULL << order)) / blocks_total;
}

static __always_inline void read_zone_state(struct zone *zone, s32 order, struct zone_state *st)
{
	u64 boost = 0;

	if (bpf_core_field_exists(zone->watermark_boost))
		boost = BPF_CORE_READ(zone, watermark_boost);
	st->wmark_min = BPF_CORE_READ(zone, _watermark[WMARK_MIN]) + boost;
	st->wmark_low = BPF_CORE_READ(zone, _watermark[WMARK_LOW]) + boost;
	st->wmark_high = BPF_CORE_READ(zone, _watermark[WMARK_HIGH]) + boost;
	st->free_pages = BPF_CORE_READ(zone, vm_stat[NR_FREE_PAGES].counter);
	st->fragidx = fragmentation_index(zone, order);
}

/* The tracepoint's prototype this program reads (kernels that pass no
 * compact_control, such as 5.10, have another): asked of CO-RE, so that the
 * kernel's own is in the BTF the object relocates against, where user space
 * checks it (kernel.raw_tracepoint_args()) and says what is missing. */
typedef void (*btf_trace_mm_compaction_begin___cc)(void *, struct compact_control *,
						    unsigned long, unsigned long, bool);

SEC("raw_tp/mm_compaction_begin")
int BPF_PROG(compaction_begin, struct compact_control *cc, unsigned long zone_start,
	     unsigned long zone_end, bool sync)
{
	struct zone *zone;
	struct start s;
	u32 tid;

	if (!bpf_core_type_exists(btf_trace_mm_compaction_begin___cc) || !should_trace())
		return 0;
	__builtin_memset(&s, 0, sizeof(s));
	s.ts_ns = bpf_ktime_get_ns();
	zone = BPF_CORE_READ(cc, zone);
	s.node = BPF_CORE_READ(zone, zone_pgdat, node_id);
	s.order = BPF_CORE_READ(cc, order);
	s.sync = sync;
	bpf_probe_read_kernel_str(s.zone, sizeof(s.zone), BPF_CORE_READ(zone, name));
	if (extended)
		read_zone_state(zone, s.order, &s.state);
	tid = (u32)bpf_get_current_pid_tgid();
	start_save(tid, &s);
	return 0;
}

#define MATCH(kernel_name, ours)						\
	if (bpf_core_enum_value_exists(enum compact_result, kernel_name) &&	\
	    kstatus == bpf_core_enum_value(enum compact_result, kernel_name))	\
		return ours

static __always_inline u8 our_status(s32 kstatus)
{
	MATCH(COMPACT_NOT_SUITABLE_ZONE, ST_NOT_SUITABLE_ZONE);
	MATCH(COMPACT_SKIPPED, ST_SKIPPED);
	MATCH(COMPACT_DEFERRED, ST_DEFERRED);
	MATCH(COMPACT_NO_SUITABLE_PAGE, ST_NO_SUITABLE_PAGE);
	MATCH(COMPACT_CONTINUE, ST_CONTINUE);
	MATCH(COMPACT_COMPLETE, ST_COMPLETE);
	MATCH(COMPACT_PARTIAL_SKIPPED, ST_PARTIAL_SKIPPED);
	MATCH(COMPACT_CONTENDED, ST_CONTENDED);
	MATCH(COMPACT_SUCCESS, ST_SUCCESS);
	return ST_UNKNOWN;
}

SEC("raw_tp/mm_compaction_end")
int BPF_PROG(compaction_end, struct compact_control *cc, unsigned long zone_start,
	     unsigned long zone_end, bool sync, int status)
{
	struct event e = {};
	struct start s;

	if (!start_take((u32)bpf_get_current_pid_tgid(), &s) ||
	    !timed_head(&e.task, &e.lat_ns, s.ts_ns, min_ns))
		return 0;
	e.node = s.node;
	e.order = s.order;
	e.kstatus = status;
	e.status = our_status(status);
	e.sync = s.sync;
	__builtin_memcpy(e.zone, s.zone, sizeof(e.zone));
	e.state = s.state;
	e.stack_id = kernel_stack ? bpf_get_stackid(ctx, &stacks, 0) : -1;
	emit(ctx, &e, sizeof(e));
	return 0;
}
