// SPDX-License-Identifier: GPL-2.0
/*
 * shmsnoop: one event per System V shared memory call: shmget(), shmat(),
 * shmdt() and shmctl(). Entry applies the filters and remembers the call and
 * its arguments by thread; exit sends them with the result. Arguments go out
 * raw, as the registers held them: user space names, truncates and decodes.
 */
#include "snoop.bpf.h"

enum shm_call { CALL_SHMGET, CALL_SHMAT, CALL_SHMDT, CALL_SHMCTL };

struct start {
	u64 args[3];
	u32 call;		/* enum shm_call */
};

struct event {
	struct task_head task;
	s64 ret;		/* an address for shmat(), so 64 bits */
	u32 call;		/* enum shm_call */
	u32 pad;
	u64 args[3];		/* the call's arguments, in order; unused ones 0 */
};

SNOOP_EVENT(struct event);

SNOOP_STARTS(struct start);

static __always_inline int enter(struct syscall_enter *ctx, u32 call, u32 nargs)
{
	struct start s = { .call = call };
	u32 tid;

	if (!should_trace())
		return 0;
	s.args[0] = ctx->args[0];
	if (nargs > 1)
		s.args[1] = ctx->args[1];
	if (nargs > 2)
		s.args[2] = ctx->args[2];
	tid = (u32)bpf_get_current_pid_tgid();
	start_save(tid, &s);
	return 0;
}

static __always_inline int leave(struct syscall_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct start *s = saved_start(tid);
	struct event e = {};

	if (!s)
		return 0;
	fill_task(&e.task);
	e.ret = ctx->ret;
	e.call = s->call;
	e.args[0] = s->args[0];
	e.args[1] = s->args[1];
	e.args[2] = s->args[2];
	emit(ctx, &e, sizeof(e));
	start_done(tid, s);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_shmget")
int shmget_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_SHMGET, 3);	/* key, size, shmflg */
}

SEC("tracepoint/syscalls/sys_enter_shmat")
int shmat_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_SHMAT, 3);	/* shmid, shmaddr, shmflg */
}

SEC("tracepoint/syscalls/sys_enter_shmdt")
int shmdt_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_SHMDT, 1);	/* shmaddr */
}

SEC("tracepoint/syscalls/sys_enter_shmctl")
int shmctl_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_SHMCTL, 3);	/* shmid, cmd, buf */
}

SEC("tracepoint/syscalls/sys_exit_shmget")
int shmget_exit(struct syscall_exit *ctx)
{
	return leave(ctx);
}

SEC("tracepoint/syscalls/sys_exit_shmat")
int shmat_exit(struct syscall_exit *ctx)
{
	return leave(ctx);
}

SEC("tracepoint/syscalls/sys_exit_shmdt")
int shmdt_exit(struct syscall_exit *ctx)
{
	return leave(ctx);
}

SEC("tracepoint/syscalls/sys_exit_shmctl")
int shmctl_exit(struct syscall_exit *ctx)
{
	return leave(ctx);
}
