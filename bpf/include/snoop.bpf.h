/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by every snooptools BPF program: the common filters, the event
 * transport (ring buffer or perf buffer, chosen by user space) and the
 * lost-event counter.
 *
 * User space writes the `const volatile` knobs below into .rodata after open
 * and before load. It never writes a value that means "unset": the defaults
 * here are that meaning, and the verifier prunes every branch of a filter
 * that is left unset.
 */
#ifndef SNOOP_BPF_H
#define SNOOP_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define SNOOP_UNSET ((u32)-1)

/* x & mask, kept even where clang proves it redundant: the verifier cannot
 * follow clang's proof, only the mask. */
#define BOUND(x, mask) ({ typeof(x) __b = (x); barrier_var(__b); __b & (mask); })
#define TASK_COMM_LEN 16

/* ---- common filters (see snooptools/filters.py) ---- */
const volatile u32 filter_pid = 0;		/* the one --pid: a compare, no lookup */
const volatile bool filter_pids = false;	/* several: consult pid_filter */
const volatile bool filter_tids = false;	/* consult tid_filter */
const volatile u32 filter_uid = SNOOP_UNSET;
const volatile char filter_comm[TASK_COMM_LEN] = {};
const volatile bool filter_cgroup = false;	/* consult cgroup_filter */
const volatile bool filter_cgroupmap = false;	/* --cgroupmap: consult cgroupmap */
const volatile bool filter_mntnsmap = false;	/* --mntnsmap: consult mntnsmap */
/* --container, --all-containers: only tasks whose cgroup is a key of
 * container_cgroups; --host-only: only tasks whose cgroup is not */
#define CONTAINERS_ONLY		1
#define CONTAINERS_EXCLUDED	2
const volatile u8 filter_containers = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u8);
} pid_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u8);
} tid_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} cgroup_filter SEC(".maps");

/*
 * BCC's --cgroupmap and --mntnsmap: sets of cgroup v2 ids and of mount
 * namespace inode numbers, kept by the user in a hash map pinned in bpffs
 * (u64 keys, any value). User space puts that map in place of these before
 * load (bpf_map__reuse_fd), so that keys added or removed apply at once;
 * unused, each is a map of one slot that no program reaches.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, u64);
	__type(value, u8);
} cgroupmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, u64);
	__type(value, u8);
} mntnsmap SEC(".maps");

/*
 * The cgroup v2 ids of the containers --container names (each container's
 * cgroup and every cgroup below it), kept up to date by user space as
 * containers come and go (containers.py): container_cgroups holds them, and
 * container_bits, one bit per id modulo its size, answers "not one of
 * them" for most other cgroups with a few loads (an array's lookup is
 * inlined), before the hash is asked. Unused, no program reaches either,
 * and the hash holds nothing (entries are allocated as added).
 */
#define CONTAINER_BITS_WORDS 1024
struct container_bits {
	u64 words[CONTAINER_BITS_WORDS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct container_bits);
} container_bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, u8);
} container_cgroups SEC(".maps");

static __always_inline bool container_listed(u64 cgid)
{
	u32 zero = 0;
	struct container_bits *bits = bpf_map_lookup_elem(&container_bits, &zero);

	if (!bits || !(bits->words[(cgid >> 6) & (CONTAINER_BITS_WORDS - 1)] & (1ULL << (cgid & 63))))
		return false;
	return bpf_map_lookup_elem(&container_cgroups, &cgid);
}

/*
 * --tree PID, --exec CMD: only the processes of one tree, by thread group
 * id: the keys of tree_tgids. User space puts PID and the descendants it
 * already has there (after attaching tree_fork and tree_exit, so that none
 * is missed); tree_fork adds every process a followed one creates (a new
 * thread of one is followed already: same tgid), tree_exit takes a process
 * out when its last thread exits. A process the map has no room for is
 * counted in tree_misses, which user space reports. Without --tree neither
 * program is loaded (SEC("?...")), the map shrinks to one slot and the
 * verifier prunes the check.
 */
const volatile bool filter_tree = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 32768);	/* user space sizes it */
	__type(key, u32);
	__type(value, u8);
} tree_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} tree_misses SEC(".maps");

/* current's task_struct may be read directly (bpf_get_current_task_btf,
 * where user space found it): its comm is then a few loads, not a helper
 * call (~40 ns on every event; fill_task()). Not what lies behind one of
 * its pointers: since 6.3 the verifier searches the kernel's whole BTF
 * (btf_nested_type_is_trusted) for each pointer walked from the task, so
 * reading the uid (task->cred) and the cgroup id (task->cgroups...)
 * directly made `snoop all` ready ~35 ms later (266 ms against 230 here),
 * for ~50 ns per event less than their helpers (make bench's open loop). */
const volatile bool task_btf = false;

/* BCC's -n NAME: only tasks whose comm contains NAME (filters.py add_name). */
const volatile char filter_name[TASK_COMM_LEN] = {};
const volatile u32 filter_name_len = 0;		/* its bytes; 0: no -n */

/* The inode number of current's mount namespace (/proc/PID/ns/mnt). */
static __always_inline u64 current_mntns(void)
{
	if (task_btf)
		return bpf_get_current_task_btf()->nsproxy->mnt_ns->ns.inum;
	return BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), nsproxy, mnt_ns, ns.inum);
}

/* current's cgroup v2 id (its directory's inode number). A helper call,
 * even where current's task_struct may be read directly: see fill_task(). */
static __always_inline u64 current_cgroup_id(void)
{
	return bpf_get_current_cgroup_id();
}

/*
 * The early exit every program takes first. It reads only what a set filter
 * needs; with no filter set it is a single helper call.
 */
static __always_inline bool should_trace(void)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;

	if (filter_pid && tgid != filter_pid)
		return false;
	if (filter_pids && !bpf_map_lookup_elem(&pid_filter, &tgid))
		return false;
	if (filter_tree && !bpf_map_lookup_elem(&tree_tgids, &tgid))
		return false;
	if (filter_tids && !bpf_map_lookup_elem(&tid_filter, &tid))
		return false;
	if (filter_uid != SNOOP_UNSET && (u32)bpf_get_current_uid_gid() != filter_uid)
		return false;
	if (filter_comm[0]) {
		char comm[TASK_COMM_LEN];

		bpf_get_current_comm(comm, sizeof(comm));
		for (int i = 0; i < TASK_COMM_LEN; i++) {
			if (comm[i] != filter_comm[i])
				return false;
			if (!comm[i])
				break;
		}
	}
	if (filter_cgroup && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return false;
	if (filter_cgroupmap) {
		u64 cgid = bpf_get_current_cgroup_id();

		if (!bpf_map_lookup_elem(&cgroupmap, &cgid))
			return false;
	}
	if (filter_mntnsmap) {
		u64 mntns = current_mntns();

		if (!bpf_map_lookup_elem(&mntnsmap, &mntns))
			return false;
	}
	if (filter_containers &&
	    container_listed(current_cgroup_id()) != (filter_containers == CONTAINERS_ONLY))
		return false;
	return true;
}

/* Is current, exiting, the last thread of its process to exit? */
static __always_inline bool group_dead(struct trace_event_raw_sched_process_exit *ctx,
				       struct task_struct *task)
{
	if (bpf_core_field_exists(ctx->group_dead))
		return ctx->group_dead;
	/* before the tracepoint carried it: do_exit() has just counted us out */
	return BPF_CORE_READ(task, signal, live.counter) == 0;
}

/* A followed process made a process: follow it too. (current is the
 * maker, the child not yet running; a new thread has current's tgid.) */
SEC("?raw_tp/sched_process_fork")
int BPF_PROG(tree_fork, struct task_struct *parent, struct task_struct *child)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32, new_tgid;
	u8 one = 1;

	if (!bpf_map_lookup_elem(&tree_tgids, &tgid))
		return 0;
	new_tgid = BPF_CORE_READ(child, tgid);
	if (new_tgid != tgid && bpf_map_update_elem(&tree_tgids, &new_tgid, &one, BPF_ANY)) {
		u32 zero = 0;
		u64 *n = bpf_map_lookup_elem(&tree_misses, &zero);

		if (n)
			(*n)++;
	}
	return 0;
}

/* A followed process is gone: its tgid may be reused by anyone. User space
 * attaches this after the tool's own programs, which run first at the
 * same tracepoint (exitsnoop's event of the process's exit). */
SEC("?tracepoint/sched/sched_process_exit")
int tree_exit(struct trace_event_raw_sched_process_exit *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (group_dead(ctx, (struct task_struct *)bpf_get_current_task()))
		bpf_map_delete_elem(&tree_tgids, &tgid);
	return 0;
}

/* ---- event transport (see snooptools/transport.py) ---- */
const volatile bool use_ringbuf = true;
/* Ring buffer: wake the reader only once this much data waits (0: every event). */
const volatile u64 wakeup_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);	/* user space sizes it */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} perf_events SEC(".maps");

/* Events that could not be written, on either transport. (A perf buffer also
 * reports its losses, but only when it next has room: a loss at the end of a
 * burst would go unreported. This count is exact.) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} lost_events SEC(".maps");

/* A per-CPU scratch value for building an event too large for the stack. */
#define SNOOP_SCRATCH(name, value_type)				\
	struct {						\
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);	\
		__uint(max_entries, 1);				\
		__type(key, u32);				\
		__type(value, value_type);			\
	} name SEC(".maps")

/*
 * starts: what a call's entry saw, kept for its exit to report. Where the
 * kernel lets tracing programs use task-local storage (user space probes
 * for it), it lives there: a lookup is a pointer chase from current, and
 * the slot goes away with its task. Elsewhere it is an LRU hash by thread
 * id (LRU, so that the entries of threads killed between entry and exit
 * cannot pile up), whose update and delete cost the traced call ~250 ns
 * more. User space picks one by use_task_storage and shrinks the other to
 * one slot (use_kernel_features in tool.py).
 *
 * SNOOP_STARTS(type) defines both maps and, for that type:
 *   start_save(tid, &v)   at entry
 *   saved_start(tid)      at exit: what entry saved, or NULL
 *   start_done(tid, s)    at exit, when done with s
 *   start_take(tid, &v)   at exit: what entry saved, copied to v and done
 *                         with; false when there is none
 * tid is the thread's id at entry (used by the hash only).
 */
const volatile bool use_task_storage = false;

#define SNOOP_STARTS(value_type)						\
	struct snoop_start {							\
		value_type v;		/* first: a value is its slot */	\
		u32 active;							\
	};									\
	struct {								\
		__uint(type, BPF_MAP_TYPE_TASK_STORAGE);			\
		__uint(map_flags, BPF_F_NO_PREALLOC);				\
		__type(key, int);						\
		__type(value, struct snoop_start);				\
	} starts_task SEC(".maps");						\
	struct {								\
		__uint(type, BPF_MAP_TYPE_LRU_HASH);				\
		__uint(max_entries, 10240);					\
		__type(key, u32);						\
		__type(value, value_type);					\
	} starts SEC(".maps");							\
										\
	static __always_inline void start_save(u32 tid, value_type *v)	\
	{									\
		struct snoop_start *slot;					\
										\
		if (!use_task_storage) {					\
			bpf_map_update_elem(&starts, &tid, v, BPF_ANY);		\
			return;							\
		}								\
		slot = bpf_task_storage_get(&starts_task, bpf_get_current_task_btf(), \
					    0, BPF_LOCAL_STORAGE_GET_F_CREATE);	\
		if (slot) {							\
			slot->v = *v;						\
			slot->active = 1;					\
		}								\
	}									\
										\
	/* With one --pid, another process's call is turned away by a	\
	 * compare before the lookup, so its exit costs no more than its	\
	 * entry did. */							\
	static __always_inline value_type *saved_start(u32 tid)		\
	{									\
		struct snoop_start *slot;					\
										\
		if (filter_pid && bpf_get_current_pid_tgid() >> 32 != filter_pid) \
			return NULL;						\
		if (!use_task_storage)						\
			return bpf_map_lookup_elem(&starts, &tid);		\
		slot = bpf_task_storage_get(&starts_task, bpf_get_current_task_btf(), \
					    0, 0);				\
		return slot && slot->active ? &slot->v : NULL;			\
	}									\
										\
	static __always_inline void start_done(u32 tid, value_type *s)		\
	{									\
		if (use_task_storage)						\
			((struct snoop_start *)s)->active = 0;			\
		else								\
			bpf_map_delete_elem(&starts, &tid);			\
	}									\
										\
	static __always_inline __attribute__((unused)) bool			\
	start_take(u32 tid, value_type *v)					\
	{									\
		value_type *s = saved_start(tid);				\
										\
		if (!s)								\
			return false;						\
		*v = *s;							\
		start_done(tid, s);						\
		return true;							\
	}

/* Keep an event type in the object's BTF, where user space reads its layout,
 * even when it only ever lives on the stack (clang drops such types). */
#define SNOOP_EVENT(type) type *snoop_event_type __attribute__((unused))

/*
 * Keep a type in the object's BTF for user space, which reads the
 * enumerators of every enum kept so by name (btf.py TypeInfo.constants):
 * a tool's flags and its limits, defined once, here.
 *	SNOOP_KEEP(enum exec_flag);
 *	SNOOP_KEEP(enum { DATA_MAX = 8192 });	(a limit: an enum of one)
 */
#define SNOOP_KEEP(...) __VA_ARGS__ *___snoop_keep(__COUNTER__) __attribute__((unused))
#define ___snoop_keep(n) ___snoop_keep2(n)
#define ___snoop_keep2(n) snoop_keep_##n

static __always_inline void *scratch(void *map)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(map, &zero);
}

/* Send size bytes at data to user space; a failure is counted, never silent. */
static __always_inline void emit(void *ctx, void *data, u64 size)
{
	long err;

	if (use_ringbuf) {
		u64 flags = 0;

		/* Wake the reader once, as the unread data crosses the mark, not
		 * for every event after it: a wakeup costs the traced task more
		 * than the event itself. The reader also polls on a timer. */
		if (wakeup_bytes) {
			u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

			flags = avail < wakeup_bytes && avail + size >= wakeup_bytes ?
				BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
		}
		err = bpf_ringbuf_output(&events, data, size, flags);
	} else {
		err = bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, data, size);
	}
	if (err) {
		u32 zero = 0;
		u64 *n = bpf_map_lookup_elem(&lost_events, &zero);

		if (n)
			(*n)++;
	}
}

/* ---- syscall tracepoint contexts ----
 * The layout of syscalls:sys_enter_* and sys_exit_* records is fixed ABI, so
 * these need no CO-RE relocation (unlike vmlinux.h's trace_event_raw_*).
 */
struct syscall_enter {
	u64 common;
	int nr;			/* __syscall_nr: an int, then padding */
	unsigned long args[6];
};

struct syscall_exit {
	u64 common;
	int nr;			/* __syscall_nr: an int, then padding */
	long ret;
};

/* Is any of the common task filters set? (A program that attributes an
 * event to a task other than current asks before it guesses.) */
static __always_inline bool task_filtered(void)
{
	return filter_pid || filter_pids || filter_tree || filter_tids || filter_uid != SNOOP_UNSET ||
	       filter_comm[0] || filter_cgroup || filter_cgroupmap || filter_mntnsmap ||
	       filter_containers;
}

/* Fields every event starts with; fill_task() sets them for current. */
struct task_head {
	u64 ts_ns;
	u32 pid;
	u32 tid;
	u32 uid;
	char comm[TASK_COMM_LEN];
	u32 vpid;		/* pid (thread group id) in current's own pid namespace */
	u64 cgroup_id;		/* current's cgroup v2 id: its directory's inode number */
	u32 tool_id;		/* which object sent it: this_tool, below */
	u32 spare;		/* zero: the head has no hole left unwritten */
};

/* The tool an event comes from, in its head: snoop runs several tools'
 * objects on one ring buffer, and reads each record's tool here to decode
 * it (the size of a record does not tell: it varies within a tool, and
 * tools share sizes). 0 when a tool runs alone. */
const volatile u32 this_tool = 0;

/* The pid of task's thread group as its own (innermost) pid namespace
 * numbers it: what ps shows inside a container. */
static __always_inline u32 task_vpid(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);

	return BPF_CORE_READ(pid, numbers[level & 31].nr);
}

static __always_inline void fill_task(struct task_head *h)
{
	u64 id = bpf_get_current_pid_tgid();

	h->ts_ns = bpf_ktime_get_ns();
	h->pid = id >> 32;
	h->tid = (u32)id;
	h->uid = (u32)bpf_get_current_uid_gid();
	if (task_btf) {
		struct task_struct *task = bpf_get_current_task_btf();

		__builtin_memcpy(h->comm, task->comm, sizeof(h->comm));
		h->vpid = task_vpid(task);
	} else {
		bpf_get_current_comm(h->comm, sizeof(h->comm));
		h->vpid = task_vpid((struct task_struct *)bpf_get_current_task());
	}
	h->cgroup_id = current_cgroup_id();
	h->tool_id = this_tool;
	h->spare = 0;
}

/*
 * Is -n's NAME part of the task's comm? A loop, so it is not in
 * should_trace(), which every entry program inlines: it runs once an event
 * has its comm (in a syscall tool's one exit program, syscall.bpf.h, and at
 * a timed pair's end, timed_head()). A NAME of 16 bytes or more is in no
 * comm.
 */
static __always_inline bool name_wanted(const struct task_head *h)
{
	const char *comm = h->comm;
	u32 i, j, len = filter_name_len;

	if (!len)
		return true;
	for (i = 0; i < TASK_COMM_LEN; i++) {
		if (!comm[i] || i + len >= TASK_COMM_LEN)
			return false;
		for (j = 0; j < len && j < TASK_COMM_LEN; j++)
			if (comm[i + j] != filter_name[j])
				break;
		if (j == len)
			return true;
	}
	return false;
}

/*
 * The head of a timed begin/end pair's event, at its end (drsnoop,
 * compactsnoop): current's task, the begin's time, and in *lat_ns the
 * pair's latency; false when the pair took less than min_ns or -n turns
 * the task away.
 */
static __always_inline bool timed_head(struct task_head *h, u64 *lat_ns, u64 begin_ns,
				       u64 min_ns)
{
	u64 lat = bpf_ktime_get_ns() - begin_ns;

	if (lat < min_ns)
		return false;
	fill_task(h);
	h->ts_ns = begin_ns;
	*lat_ns = lat;
	return name_wanted(h);
}

/* This CPU's scratch event in heap (an SNOOP_SCRATCH of a struct whose first
 * member is its task_head), with that head filled in; NULL if none. */
static __always_inline void *task_event(void *heap)
{
	struct task_head *h = scratch(heap);

	if (h)
		fill_task(h);
	return h;
}

char LICENSE[] SEC("license") = "GPL";

#endif /* SNOOP_BPF_H */
