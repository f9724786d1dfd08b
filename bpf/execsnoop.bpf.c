// SPDX-License-Identifier: GPL-2.0
/*
 * execsnoop: one event per exec(). Entry (execve, execveat) applies the
 * filters and remembers the caller's filename and argv pointers by thread.
 * A successful exec is reported from sched_process_exec, where the new
 * image's argument area has just been written by the kernel and is resident,
 * so arguments are read in full. A failed exec (-x) is reported at syscall
 * exit, where the kernel has already touched the caller's argv pages.
 */
#include "snoop.bpf.h"

#define FNAME_LEN	4096	/* the filename, with its NUL */
#define ARGS_LEN	16384	/* the argument strings, a power of two */
#define ARG_LEN		1024	/* one argv string read from the caller (failed exec) */
#define ARGV_MAX	128	/* argv entries read from the caller (failed exec) */

const volatile bool include_failed = false;
const volatile u32 filter_ppid = SNOOP_UNSET;
const volatile u32 max_args = 20;

enum exec_flag {
	EXEC_TRUNCATED = 1,	/* more arguments or bytes than were captured */
	EXEC_INTERP = 2,	/* the kernel rewrote argv for a #! interpreter */
};

struct event {
	struct task_head task;
	u32 ppid;
	s32 ret;
	u32 cpu;
	u32 flags;		/* enum exec_flag */
	u32 fname_len;		/* bytes of args[] holding the filename and its NUL */
	u32 args_len;		/* bytes of args[] after it: NUL-separated argv */
	char pcomm[TASK_COMM_LEN];
	char args[FNAME_LEN + ARGS_LEN + ARG_LEN];	/* slack: the verifier sees masks, not loops */
};

struct start {
	const char *filename;
	const char *const *argv;
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

static __always_inline int enter(const char *filename, const char *const *argv)
{
	struct start s = { .filename = filename, .argv = argv };
	u32 tid;

	if (!should_trace())
		return 0;
	if (filter_ppid != SNOOP_UNSET) {
		struct task_struct *task = (void *)bpf_get_current_task();

		if (BPF_CORE_READ(task, real_parent, tgid) != filter_ppid)
			return 0;
	}
	tid = (u32)bpf_get_current_pid_tgid();
	start_save(tid, &s);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int execve_enter(struct syscall_enter *ctx)
{
	return enter((const char *)ctx->args[0], (const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int execveat_enter(struct syscall_enter *ctx)
{
	return enter((const char *)ctx->args[1], (const char *const *)ctx->args[2]);
}

static __always_inline struct event *new_event(s32 ret, u32 tid)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct event *e = task_event(&heap);

	if (!e)
		return NULL;
	e->task.tid = tid;
	e->ret = ret;
	e->cpu = bpf_get_smp_processor_id();
	e->flags = 0;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&e->pcomm, task, real_parent, comm);
	return e;
}

static __always_inline void send(void *ctx, struct event *e)
{
	u64 size = offsetof(struct event, args) + e->fname_len + e->args_len;

	if (size > sizeof(*e))
		size = sizeof(*e);
	emit(ctx, e, size);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(exec_done, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct start *s = saved_start(old_pid);
	const char *filename;
	struct event *e;
	u64 start, len;
	long n;

	if (!s)
		return 0;
	start_done(old_pid, s);
	e = new_event(0, old_pid);
	if (!e)
		return 0;

	filename = BPF_CORE_READ(bprm, filename);
	if (BPF_CORE_READ(bprm, interp) != filename)
		e->flags |= EXEC_INTERP;
	n = bpf_probe_read_kernel_str(e->args, FNAME_LEN - 1, filename);
	e->fname_len = n > 0 ? n : 0;

	start = BPF_CORE_READ(p, mm, arg_start);
	len = BPF_CORE_READ(p, mm, arg_end) - start;
	if (len > ARGS_LEN) {
		len = ARGS_LEN;
		e->flags |= EXEC_TRUNCATED;
	}
	if (bpf_probe_read_user(&e->args[BOUND(e->fname_len, FNAME_LEN - 1)],
				len & (ARGS_LEN - 1), (void *)start) == 0)
		e->args_len = len & (ARGS_LEN - 1);
	else
		e->args_len = 0;
	if (len == ARGS_LEN)
		e->flags |= EXEC_TRUNCATED;
	send(ctx, e);
	return 0;
}

static __always_inline int leave(struct syscall_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct start *s = saved_start(tid);
	const char *const *argv;
	struct event *e;
	u32 off = 0;
	long n;

	if (!s)
		return 0;
	argv = s->argv;
	n = ctx->ret;
	if (!include_failed || n >= 0)
		goto out;
	e = new_event(n, tid);
	if (!e)
		goto out;
	n = bpf_probe_read_user_str(e->args, FNAME_LEN - 1, s->filename);
	e->fname_len = n > 0 ? n : 0;
	for (u32 i = 0; i < ARGV_MAX; i++) {
		const char *arg = NULL;

		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			break;
		if (i >= max_args + 1 || off > ARGS_LEN - ARG_LEN) {
			e->flags |= EXEC_TRUNCATED;
			break;
		}
		n = bpf_probe_read_user_str(&e->args[FNAME_LEN + BOUND(off, ARGS_LEN - 1)],
					    ARG_LEN, arg);
		if (n < 0)
			break;
		if (n == 0) {	/* "": some kernels return 0, not 1 */
			e->args[FNAME_LEN + BOUND(off, ARGS_LEN - 1)] = 0;
			n = 1;
		}
		off += n;
	}
	/* move argv next to the filename, as the success path lays it out */
	e->args_len = off;
	if (off)
		bpf_probe_read_kernel(&e->args[BOUND(e->fname_len, FNAME_LEN - 1)],
				      off & (ARGS_LEN - 1), &e->args[FNAME_LEN]);
	send(ctx, e);
out:
	start_done(tid, s);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int execve_exit(struct syscall_exit *ctx)
{
	return leave(ctx);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int execveat_exit(struct syscall_exit *ctx)
{
	return leave(ctx);
}
