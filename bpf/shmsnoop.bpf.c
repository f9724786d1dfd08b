// SPDX-License-Identifier: GPL-2.0
/*
 * shmsnoop: one event per System V shared memory call: shmget(), shmat(),
 * shmdt() and shmctl(), a syscall tool (syscall.bpf.h): entry remembers the
 * call's arguments, exit sends them with the result. Arguments go out raw,
 * as the registers held them: user space names, truncates and decodes.
 */
#include "syscall.bpf.h"

enum call { CALL_SHMGET, CALL_SHMAT, CALL_SHMDT, CALL_SHMCTL };

struct start {
	u64 args[3];
	enum call call;
};

struct event {
	struct task_head task;
	s64 ret;		/* an address for shmat(), so 64 bits */
	struct start call;	/* its arguments, in order (unused ones 0), and which */
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
{
	return true;
}

/* key, size, shmflg */
SYSCALL_ENTER(shmget, .call = CALL_SHMGET, .args = { ctx->args[0], ctx->args[1], ctx->args[2] })
/* shmid, shmaddr, shmflg */
SYSCALL_ENTER(shmat, .call = CALL_SHMAT, .args = { ctx->args[0], ctx->args[1], ctx->args[2] })
/* shmaddr */
SYSCALL_ENTER(shmdt, .call = CALL_SHMDT, .args = { ctx->args[0] })
/* shmid, cmd, buf */
SYSCALL_ENTER(shmctl, .call = CALL_SHMCTL, .args = { ctx->args[0], ctx->args[1], ctx->args[2] })

static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	e->ret = ctx->ret;
	e->call = *s;
	return sizeof(*e);
}

SYSCALL_EXIT(shmget)
