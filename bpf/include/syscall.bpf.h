/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A syscall tool, both halves of it (user space: snooptools/syscall.py).
 *
 * Each traced call has an entry program, SYSCALL_ENTER(name, initializers),
 * at its sys_enter tracepoint: after the common filters it fills the tool's
 * struct start from the initializers (which read the call's ctx->args[]),
 * lets the tool's start_wanted() complete it or turn the call away, and
 * saves it for the exit (SNOOP_STARTS).
 *
 * One exit program, SYSCALL_EXIT(name), serves every call: it is verified
 * once, however many calls the tool traces, and user space attaches it to
 * the sys_exit tracepoint of each of them besides name's (their contexts are
 * all alike). It takes what the entry saved, applies the result filters,
 * fills the task head of this CPU's event, hands both to the tool's
 * fill_event(), applies -n (name_wanted(), snoop.bpf.h) and sends what
 * fill_event() made, then frees the start. (-n comes after fill_event():
 * a branch on it before made the verifier walk mountsnoop's fill_event()
 * again, 3500 instructions more, even without -n.)
 *
 * So a tool is its calls, how it fills its event, and its own filters. It
 * defines, before the SYSCALL_ENTER and SYSCALL_EXIT lines:
 *
 *   enum call { CALL_<NAME>, ... };	its calls: user space reads them from
 *	the object's BTF, and finds each call's entry program by its name,
 *	<name>_enter, and its tracepoints, sys_enter_<name> and sys_exit_<name>
 *   struct start { enum call call; ... };	what an entry hands its exit
 *   struct event { struct task_head task; ... };
 *   SNOOP_STARTS(struct start);
 *   SNOOP_SCRATCH(heap, struct event);
 *   static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
 *	s as the initializers left it; false: do not trace this call
 *   static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s,
 *					   struct event *e)
 *	the bytes of *e to send; 0: none (a tool that sends events of its own
 *	applies -n to them itself: name_wanted(&e->task))
 *
 * Each entry program's call is a constant, so what start_wanted() and the
 * initializers do for other calls is compiled out of it.
 */
#ifndef SNOOP_SYSCALL_BPF_H
#define SNOOP_SYSCALL_BPF_H

#include "snoop.bpf.h"

const volatile bool failed_only = false;	/* -x: only calls that failed */
const volatile bool include_failed = true;	/* failed calls too (off: bindsnoop without -E) */
const volatile u32 calls_mask = 0;		/* --call: bit 1 << enum call; 0: every call */

static __always_inline bool result_wanted(long ret)
{
	return ret < 0 ? include_failed : !failed_only;
}

#define SYSCALL_ENTER(name, ...)						\
SEC("tracepoint/syscalls/sys_enter_" #name)					\
int name##_enter(struct syscall_enter *ctx)					\
{										\
	if (should_trace()) {							\
		struct start s = { __VA_ARGS__ };				\
										\
		if ((!calls_mask || calls_mask & 1U << s.call) &&		\
		    start_wanted(ctx, &s))					\
			start_save((u32)bpf_get_current_pid_tgid(), &s);	\
	}									\
	return 0;								\
}

/* The call's first n arguments, as an array's initializer: no more than the
 * call has (a program that reads past its tracepoint's record is refused
 * where it is attached). */
#define SYSCALL_ARGS(n) ___SYSCALL_ARGS##n
#define ___SYSCALL_ARGS1 { ctx->args[0] }
#define ___SYSCALL_ARGS2 { ctx->args[0], ctx->args[1] }
#define ___SYSCALL_ARGS3 { ctx->args[0], ctx->args[1], ctx->args[2] }
#define ___SYSCALL_ARGS4 { ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3] }
#define ___SYSCALL_ARGS5 { ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], ctx->args[4] }

/* The exit program, at sys_exit_<name>: name is a call every architecture
 * has, since libbpf attaches the program there itself. */
#define SYSCALL_EXIT(name) ___SYSCALL_EXIT(name, 0, ___no_start)

/*
 * The same, for a tool that can do without its entry programs where the
 * kernel allows (opensnoop): with exit_only set (by user space), no entry
 * runs, and at_exit(ctx, s) makes the call's start at the exit, after the
 * common filters, from what is still there to read (the registers the call
 * was made with); false turns the call away.
 */
#define SYSCALL_EXIT_OR(name, at_exit)						\
const volatile bool exit_only = false;						\
___SYSCALL_EXIT(name, exit_only, at_exit)

static __always_inline bool ___no_start(struct syscall_exit *ctx, void *s)
{
	return false;
}

#define ___SYSCALL_EXIT(name, no_entry, at_exit)				\
___SYSCALL_EXIT_AS(syscall_exit, fill_event, name, no_entry, at_exit)

/*
 * A second exit program, for a tool with variants (user space loads the
 * one of its variant): syscall_exit_<variant>, whose events fill() fills
 * (as fill_event() does). syncsnoop's find msync()'s mapping by
 * bpf_find_vma() or in the VMA tree: two programs, as kernels before 5.13
 * refuse a program that takes a callback's address even in code that never
 * runs (fs.bpf.h).
 */
#define SYSCALL_EXIT_VARIANT(name, variant, fill)				\
___SYSCALL_EXIT_AS(syscall_exit_##variant, fill, name, 0, ___no_start)

#define ___SYSCALL_EXIT_AS(prog, fill, name, no_entry, at_exit)		\
SEC("tracepoint/syscalls/sys_exit_" #name)					\
int prog(struct syscall_exit *ctx)						\
{										\
	u32 tid = (u32)bpf_get_current_pid_tgid();				\
	struct start made, *s = &made;						\
	struct event *e;							\
	u64 size;								\
										\
	if (no_entry) {							\
		if (!should_trace() || !at_exit(ctx, s))			\
			return 0;						\
	} else {								\
		s = saved_start(tid);						\
		if (!s)								\
			return 0;						\
	}									\
	if (result_wanted(ctx->ret)) {						\
		e = task_event(&heap);						\
		if (e) {							\
			size = fill(ctx, s, e);					\
			if (size && name_wanted(&e->task))			\
				emit(ctx, e, size);				\
		}								\
	}									\
	if (!no_entry)								\
		start_done(tid, s);						\
	return 0;								\
}

#endif /* SNOOP_SYSCALL_BPF_H */
