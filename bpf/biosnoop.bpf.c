// SPDX-License-Identifier: GPL-2.0
/*
 * biosnoop: one event per completed block I/O request, with the process
 * that submitted it, the disk, the operation, sector, size, the time it
 * spent queued in the OS and its latency at the device.
 *
 * Every step is a raw tracepoint, keyed by the struct request pointer, whose
 * fields are read with CO-RE. block_io_start (6.5+) runs in the submitter's
 * context: the filters are judged there and the request is attributed to
 * that process. Where it is absent, the request is attributed to the context
 * that inserts it into the scheduler or, failing that, issues it.
 * block_rq_issue notes when the device got it; block_rq_complete reports.
 *
 * Older kernels differ in what they hand over and keep, and each difference
 * is probed with CO-RE: before 5.11 block_rq_insert, _issue and _merge take
 * the request queue before the request, and block_rq_complete an errno, not
 * a blk_status_t; before 5.12 a bio names its disk and partition number, not
 * its block_device.
 */
#include "snoop.bpf.h"

const volatile bool io_start_traced = false;	/* block_io_start attributes */
const volatile u32 filter_dev = SNOOP_UNSET;	/* -d: kernel dev_t (MAJ << 20 | MIN) */
const volatile bool filter_part = false;	/* -d names a partition, not a disk */
const volatile bool pattern = false;		/* -P */
const volatile u64 min_ns = 0;			/* --min-ms */

#define MINORBITS	20
#define REQ_OP_MASK	0xff

/* How an I/O's start relates to the previous one on its disk (-P) */
enum pattern { PATTERN_UNKNOWN, PATTERN_SEQUENTIAL, PATTERN_RANDOM };

/* Modifier bits, normalised: the kernel's __REQ_* numbers move between
 * versions, so they are looked up by name (CO-RE enum relocations). */
enum mod {
	MOD_PREFLUSH = 1,
	MOD_FUA = 2,
	MOD_RAHEAD = 4,
	MOD_SYNC = 8,
	MOD_META = 16,
};
SNOOP_KEEP(enum mod);
SNOOP_KEEP(enum req_op);	/* the kernel's REQ_OP_*, for user space to name op */

/* The context a request is attributed to */
enum pid_from {
	FROM_SUBMIT,	/* block_io_start */
	FROM_INSERT,	/* block_rq_insert */
	FROM_ISSUE,	/* block_rq_issue */
};

struct inflight {
	struct task_head who;	/* who.ts_ns: when the OS took the request */
	u64 issue_ns;		/* 0: not issued yet */
	u64 sector;
	u32 bytes;
	enum pattern pattern;
	enum pid_from pid_from;
};

struct event {
	struct task_head task;	/* the submitter; ts_ns: completion */
	u64 sector;
	u64 lat_ns;		/* issue to completion */
	u64 queue_ns;		/* OS start to issue */
	u32 bytes;
	u32 disk_dev;		/* the whole disk's dev_t */
	u32 part_dev;		/* the partition's (the disk's for whole-disk I/O) */
	enum pattern pattern;
	enum pid_from pid_from;
	s32 status;		/* blk_status_t, or where the kernel passes one, -errno */
	u8 op;			/* enum req_op */
	u8 mods;		/* enum mod */
};

SNOOP_EVENT(struct event);

/* In-flight requests by address. LRU: a request we never see end (freed
 * on an error path) cannot fill the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, u64);
	__type(value, struct inflight);
} requests SEC(".maps");

/* -P: where the last I/O issued to each disk ended, by dev_t. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u64);
} last_sector SEC(".maps");

/* What older kernels have instead (CO-RE matches these by the name before
 * the ___): a request's own disk and partition pointers; a disk's table of
 * partitions, each a struct hd_struct with its sectors and, in its struct
 * device, its dev_t. */
struct hd_struct___old {
	sector_t start_sect;
	sector_t nr_sects;
	struct device __dev;
};

struct disk_part_tbl___old {
	int len;
	struct hd_struct___old *part[0];
};

struct gendisk___old {
	struct disk_part_tbl___old *part_tbl;
};

struct request___old {
	struct gendisk___old *rq_disk;
	struct hd_struct___old *part;
};

#define MAX_PARTS	64	/* partitions looked through (a disk's table: 1 + partitions) */

static __always_inline u32 disk_dev(struct request *rq)
{
	struct gendisk *disk;

	if (bpf_core_field_exists(struct request_queue, disk))
		disk = BPF_CORE_READ(rq, q, disk);
	else
		disk = (void *)BPF_CORE_READ((struct request___old *)rq, rq_disk);
	return (u32)BPF_CORE_READ(disk, major) << MINORBITS | BPF_CORE_READ(disk, first_minor);
}

/*
 * Where bios name no block_device (before 5.12): the request's partition,
 * which it keeps on queues that keep statistics; else the one its first
 * sector is in, in its disk's table, as the kernel's disk_map_sector_rcu()
 * finds it (a bio sent to a partition has been remapped to its disk,
 * partition 0, by the time it is a request). 0 if unknown.
 */
static __always_inline u32 old_part_dev(struct request *rq)
{
	struct request___old *old = (void *)rq;
	struct hd_struct___old *part = BPF_CORE_READ(old, part);
	struct disk_part_tbl___old *tbl;
	u64 sector, start, at;
	int len;

	if (part)
		return BPF_CORE_READ(part, __dev.devt);
	tbl = BPF_CORE_READ(old, rq_disk, part_tbl);
	if (!tbl)
		return 0;
	sector = BPF_CORE_READ(rq, __sector);
	len = BPF_CORE_READ(tbl, len);
	at = (u64)tbl + bpf_core_field_offset(struct disk_part_tbl___old, part);
	for (int i = 1; i < MAX_PARTS && i < len; i++) {
		part = NULL;
		bpf_probe_read_kernel(&part, sizeof(part), (void *)(at + i * sizeof(void *)));
		if (!part)
			continue;
		start = BPF_CORE_READ(part, start_sect);
		if (sector >= start && sector - start < BPF_CORE_READ(part, nr_sects))
			return BPF_CORE_READ(part, __dev.devt);
	}
	return 0;		/* the whole disk's: part_dev() names it */
}

/* The partition addressed (the disk's part0 for whole-disk I/O). rq->part
 * is set after block_io_start, and only on queues that keep statistics: the
 * first bio knows it. */
static __always_inline u32 part_dev(struct request *rq)
{
	struct block_device *part;
	u32 dev;

	if (!bpf_core_field_exists(struct bio, bi_bdev)) {
		dev = old_part_dev(rq);
		return dev ? dev : disk_dev(rq);
	}
	part = BPF_CORE_READ(rq, bio, bi_bdev);
	if (!part)
		part = BPF_CORE_READ(rq, part);
	return part ? BPF_CORE_READ(part, bd_dev) : disk_dev(rq);
}

/* block_rq_issue's prototype where the request queue comes first. CO-RE
 * finds this type in the kernel only if its parameters match in number
 * (libbpf compares prototypes' parameters, not their structs' names). */
typedef void (*btf_trace_block_rq_issue___queue)(void *, struct request_queue *,
						  struct request *);

/* The request of block_rq_insert, _issue and _merge (whose arguments change
 * together): the first argument, or the second after the queue. The read
 * not made is left out by the verifier, and must be: a raw tracepoint
 * program that reads past its tracepoint's arguments is refused at attach. */
static __always_inline struct request *rq_arg(u64 *ctx)
{
	if (bpf_core_type_exists(btf_trace_block_rq_issue___queue))
		return (struct request *)ctx[1];
	return (struct request *)ctx[0];
}

static __always_inline bool disk_wanted(struct request *rq)
{
	if (filter_dev == SNOOP_UNSET)
		return true;
	return (filter_part ? part_dev(rq) : disk_dev(rq)) == filter_dev;
}

/* Attribute rq to current, started now; false if the filters refuse it. */
static __always_inline bool claim(struct request *rq, struct inflight *r, enum pid_from by)
{
	if (!should_trace() || !disk_wanted(rq))
		return false;
	fill_task(&r->who);
	r->pid_from = by;
	return true;
}

SEC("raw_tp/block_io_start")
int BPF_PROG(io_start, struct request *rq)
{
	u64 key = (u64)rq;
	struct inflight r = {};

	if (claim(rq, &r, FROM_SUBMIT))
		bpf_map_update_elem(&requests, &key, &r, BPF_ANY);
	return 0;
}

/* Kernels without block_io_start: the inserting context stands in for the
 * submitter, and the queue time runs from here. A requeued request is
 * inserted again and keeps its first attribution. */
SEC("raw_tp/block_rq_insert")
int rq_insert(u64 *ctx)
{
	struct request *rq = rq_arg(ctx);
	u64 key = (u64)rq;
	struct inflight r = {};

	if (!bpf_map_lookup_elem(&requests, &key) && claim(rq, &r, FROM_INSERT))
		bpf_map_update_elem(&requests, &key, &r, BPF_ANY);
	return 0;
}

/* 'rq' was merged into another request and goes away without completing. */
SEC("raw_tp/block_rq_merge")
int rq_merge(u64 *ctx)
{
	u64 key = (u64)rq_arg(ctx);

	bpf_map_delete_elem(&requests, &key);
	return 0;
}

static __always_inline enum pattern classify(struct request *rq, u64 sector, u32 bytes)
{
	u32 dev = disk_dev(rq);
	u64 end = sector + (bytes >> 9);
	u64 *last = bpf_map_lookup_elem(&last_sector, &dev);
	enum pattern p = PATTERN_UNKNOWN;

	if (last) {
		p = *last == sector ? PATTERN_SEQUENTIAL : PATTERN_RANDOM;
		*last = end;
	} else {
		bpf_map_update_elem(&last_sector, &dev, &end, BPF_ANY);
	}
	return p;
}

SEC("raw_tp/block_rq_issue")
int rq_issue(u64 *ctx)
{
	struct request *rq = rq_arg(ctx);
	u64 key = (u64)rq, now = bpf_ktime_get_ns();
	u64 sector = BPF_CORE_READ(rq, __sector);
	u32 bytes = BPF_CORE_READ(rq, __data_len);
	enum pattern p = PATTERN_UNKNOWN;
	struct inflight *r, fresh = {};

	/* every I/O to the disk moves its position, traced or not */
	if (sector == (u64)-1)
		sector = 0;		/* a flush has none; shown as 0, as tracepoints do */
	else if (pattern && bytes)
		p = classify(rq, sector, bytes);
	r = bpf_map_lookup_elem(&requests, &key);
	if (!r) {
		/*
		 * Not seen starting: a flush the block layer made itself, one
		 * started before tracing or (without block_io_start) issued
		 * without an insert. The issuing context stands in, unless
		 * block_io_start ran and a process filter may have refused it
		 * there: the issuer is then often another process.
		 */
		if (io_start_traced && task_filtered())
			return 0;
		if (!claim(rq, &fresh, FROM_ISSUE))
			return 0;
		fresh.who.ts_ns = now;	/* queue time unknown: 0 */
		r = &fresh;
	}
	r->issue_ns = now;
	r->sector = sector;
	r->bytes = bytes;
	r->pattern = p;
	if (r == &fresh)
		bpf_map_update_elem(&requests, &key, r, BPF_ANY);
	return 0;
}

static __always_inline u8 modifiers(u32 opf)
{
	u8 m = 0;

	if (opf & 1U << bpf_core_enum_value(enum req_flag_bits, __REQ_PREFLUSH))
		m |= MOD_PREFLUSH;
	if (opf & 1U << bpf_core_enum_value(enum req_flag_bits, __REQ_FUA))
		m |= MOD_FUA;
	if (opf & 1U << bpf_core_enum_value(enum req_flag_bits, __REQ_RAHEAD))
		m |= MOD_RAHEAD;
	if (opf & 1U << bpf_core_enum_value(enum req_flag_bits, __REQ_SYNC))
		m |= MOD_SYNC;
	if (opf & 1U << bpf_core_enum_value(enum req_flag_bits, __REQ_META))
		m |= MOD_META;
	return m;
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(rq_complete, struct request *rq, s64 error, unsigned int nr_bytes)
{
	u64 key = (u64)rq, now = bpf_ktime_get_ns();
	struct inflight *r = bpf_map_lookup_elem(&requests, &key);
	struct event e = {};
	u32 opf;

	if (!r)
		return 0;
	/* A partial completion: the request goes on. */
	if (nr_bytes < BPF_CORE_READ(rq, __data_len))
		return 0;
	/* Ended without being issued: its data went in another request (the
	 * block layer's own flush does the work of an empty flush). */
	if (!r->issue_ns || now - r->issue_ns < min_ns)
		goto out;
	e.task = r->who;
	e.task.ts_ns = now;
	e.sector = r->sector;
	e.bytes = r->bytes;
	e.lat_ns = now - r->issue_ns;
	e.queue_ns = r->issue_ns - r->who.ts_ns;
	e.pattern = r->pattern;
	e.pid_from = r->pid_from;
	e.disk_dev = disk_dev(rq);
	e.part_dev = part_dev(rq);
	opf = BPF_CORE_READ(rq, cmd_flags);
	e.op = opf & REQ_OP_MASK;
	e.mods = modifiers(opf);
	/* a blk_status_t (u8) comes zero-extended, an errno (int) sign-extended */
	e.status = error;
	emit(ctx, &e, sizeof(e));
out:
	bpf_map_delete_elem(&requests, &key);
	return 0;
}
