// SPDX-License-Identifier: GPL-2.0
/*
 * forksnoop: one event per fork(), vfork(), clone() or clone3(), a syscall
 * tool (syscall.bpf.h): the parent, the child the call made (its result) and
 * the flags it asked for. fork and vfork take none; clone's are its first
 * argument (the exit signal in their low byte); clone3's are in the struct
 * clone_args it points to, read at the exit, once the kernel has copied it
 * (so its page is resident). Only the parent has a start: the child's return
 * from the call, through the same exit, is not an event.
 */
#include "syscall.bpf.h"

enum call { CALL_FORK, CALL_VFORK, CALL_CLONE, CALL_CLONE3 };

struct start {
	u64 arg;		/* clone: its flags; clone3: its struct clone_args */
	u64 size;		/* clone3: the size of that struct */
	enum call call;
};

struct event {
	struct task_head task;	/* the parent */
	s64 ret;		/* the child's id, or -errno */
	u64 flags;		/* clone's flags argument, clone3's flags; fork, vfork: 0 */
	u64 exit_signal;	/* clone3's (clone's is in its flags) */
	enum call call;
	u32 args_read;		/* clone3: its struct clone_args could be read */
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
{
	return true;
}

SYSCALL_ENTER(fork, .call = CALL_FORK)
SYSCALL_ENTER(vfork, .call = CALL_VFORK)
/* clone(flags, newsp, parent_tidptr, child_tidptr, tls): flags first everywhere */
SYSCALL_ENTER(clone, .call = CALL_CLONE, .arg = ctx->args[0])
/* clone3(uargs, size) */
SYSCALL_ENTER(clone3, .call = CALL_CLONE3, .arg = ctx->args[0], .size = ctx->args[1])

static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	struct clone_args a;

	e->ret = ctx->ret;
	e->call = s->call;
	e->flags = s->call == CALL_CLONE ? s->arg : 0;
	e->exit_signal = 0;
	e->args_read = 0;
	/* clone_args from flags to exit_signal: in every version of it */
	if (s->call == CALL_CLONE3 && s->size >= offsetof(struct clone_args, stack) &&
	    !bpf_probe_read_user(&a, offsetof(struct clone_args, stack), (void *)s->arg)) {
		e->flags = a.flags;
		e->exit_signal = a.exit_signal;
		e->args_read = 1;
	}
	return sizeof(*e);
}

SYSCALL_EXIT(clone)
