// SPDX-License-Identifier: GPL-2.0
/*
 * dcsnoop: dentry cache lookups. A miss (M) is d_lookup() returning NULL:
 * the name was not in the dcache. With -a every component the path walk
 * looks up is also a reference (R), at lookup_fast(). No tracepoint carries
 * either, so there are two variants of the same events: fentry/fexit, and
 * kprobes where the kernel refuses fentry. The driver loads one.
 */
#include "snoop.bpf.h"
#include <bpf/bpf_tracing.h>

#define NAME_LEN	256

const volatile bool all_lookups = false;	/* -a: references too */

enum lookup_type { LOOKUP_MISS, LOOKUP_REFERENCE };

struct event {
	struct task_head task;
	enum lookup_type type;	/* user space: M for a miss, R for a reference */
	u32 name_len;		/* bytes of name[] with its NUL */
	char name[NAME_LEN];	/* this component and the rest of the path */
};

SNOOP_SCRATCH(heap, struct event);

/* d_lookup's name argument, kept from kprobe to kretprobe */
SNOOP_STARTS(const unsigned char *);

static __always_inline int report(void *ctx, u32 type, const unsigned char *name)
{
	struct event *e = task_event(&heap);
	long n;

	if (!e)
		return 0;
	e->type = type;
	n = bpf_probe_read_kernel_str(e->name, NAME_LEN, name);
	e->name_len = n > 0 ? n : 1;
	if (n <= 0)
		e->name[0] = 0;
	emit(ctx, e, offsetof(struct event, name) + BOUND(e->name_len, NAME_LEN - 1) + 1);
	return 0;
}

static __always_inline int reference(void *ctx, struct nameidata *nd)
{
	if (!all_lookups || !should_trace())
		return 0;
	return report(ctx, LOOKUP_REFERENCE, BPF_CORE_READ(nd, last.name));
}

/* -- fentry variant ------------------------------------------------------ */

SEC("fentry/lookup_fast")
int BPF_PROG(fentry_lookup_fast, struct nameidata *nd)
{
	return reference(ctx, nd);
}

SEC("fexit/d_lookup")
int BPF_PROG(fexit_d_lookup, const struct dentry *parent, const struct qstr *name,
	     struct dentry *ret)
{
	if (ret || !should_trace())
		return 0;
	return report(ctx, LOOKUP_MISS, BPF_CORE_READ(name, name));
}

/* -- kprobe variant ------------------------------------------------------- */

SEC("kprobe/lookup_fast")
int BPF_KPROBE(kprobe_lookup_fast, struct nameidata *nd)
{
	return reference(ctx, nd);
}

SEC("kprobe/d_lookup")
int BPF_KPROBE(kprobe_d_lookup, const struct dentry *parent, const struct qstr *name)
{
	const unsigned char *s;
	u32 tid;

	if (!should_trace())
		return 0;
	s = BPF_CORE_READ(name, name);
	tid = (u32)bpf_get_current_pid_tgid();
	start_save(tid, &s);
	return 0;
}

SEC("kretprobe/d_lookup")
int BPF_KRETPROBE(kretprobe_d_lookup, struct dentry *ret)
{
	const unsigned char *name;

	if (start_take((u32)bpf_get_current_pid_tgid(), &name) && !ret)
		report(ctx, LOOKUP_MISS, name);
	return 0;
}
