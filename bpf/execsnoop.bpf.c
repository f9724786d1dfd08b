// SPDX-License-Identifier: GPL-2.0
/*
 * execsnoop: one event per exec(). Entry (execve, execveat) applies the
 * filters and remembers the caller's filename and argv pointers by thread.
 * A successful exec is reported from sched_process_exec, where the new
 * image's argument area has just been written by the kernel and is resident,
 * so arguments are read in full. A failed exec (-x) is reported at syscall
 * exit, where the kernel has already touched the caller's argv pages: a
 * syscall tool (syscall.bpf.h) whose exit reports failures only (user space
 * sets failed_only, and include_failed with -x).
 */
#include "syscall.bpf.h"

#define FNAME_LEN	4096	/* the filename, with its NUL */
#define ARGS_LEN	16384	/* the argument strings, a power of two */
#define ARG_LEN		1024	/* one argv string read from the caller (failed exec) */
#define ARGV_MAX	128	/* argv entries read from the caller (failed exec) */

const volatile u32 filter_ppid = SNOOP_UNSET;
const volatile u32 max_args = 20;

enum call { CALL_EXECVE, CALL_EXECVEAT };

enum exec_flag {
	EXEC_TRUNCATED = 1,	/* more arguments or bytes than were captured */
	EXEC_INTERP = 2,	/* the kernel rewrote argv for a #! interpreter */
};
SNOOP_KEEP(enum exec_flag);

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
	enum call call;
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	return filter_ppid == SNOOP_UNSET || BPF_CORE_READ(task, real_parent, tgid) == filter_ppid;
}

/* execve(filename, argv, envp), execveat(dfd, filename, argv, envp, flags) */
SYSCALL_ENTER(execve, .call = CALL_EXECVE, .filename = (const char *)ctx->args[0],
	      .argv = (const char *const *)ctx->args[1])
SYSCALL_ENTER(execveat, .call = CALL_EXECVEAT, .filename = (const char *)ctx->args[1],
	      .argv = (const char *const *)ctx->args[2])

/* The fields of an exec's event besides the task's and its arguments. */
static __always_inline void fill_exec(struct event *e, s32 ret)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	e->ret = ret;
	e->cpu = bpf_get_smp_processor_id();
	e->flags = 0;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&e->pcomm, task, real_parent, comm);
}

static __always_inline u64 event_size(struct event *e)
{
	u64 size = offsetof(struct event, args) + e->fname_len + e->args_len;

	return size < sizeof(*e) ? size : sizeof(*e);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(exec_done, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	const char *filename;
	struct event *e;
	struct start s;
	u64 start, len;
	long n;

	if (!start_take(old_pid, &s))
		return 0;
	e = task_event(&heap);
	if (!e)
		return 0;
	e->task.tid = old_pid;
	fill_exec(e, 0);

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
	emit(ctx, e, event_size(e));
	return 0;
}

/* A failed exec, at its exit: its arguments from the caller's memory. */
static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	const char *const *argv = s->argv;
	u32 off = 0;
	long n;

	fill_exec(e, ctx->ret);
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
	return event_size(e);
}

SYSCALL_EXIT(execve)
