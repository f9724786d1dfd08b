// SPDX-License-Identifier: GPL-2.0
/*
 * opensnoop: one event per open(), openat() or openat2(). Where the kernel
 * lets tracing programs read a task's saved user registers (exit_only, set
 * by user space), the exit alone does everything: it applies the filters and
 * takes the call's arguments from the registers it was made with, so no
 * entry program runs and a filtered-out call costs one program, not two.
 * Elsewhere the entry applies the filters and saves the arguments for the
 * exit (SNOOP_STARTS). The exit reads the path (the kernel has copied it by
 * then, so its page is resident), applies the failed and path filters, and
 * for -F resolves the absolute path: from the returned descriptor on
 * success, else from the directory the call was relative to.
 */
#include "path.bpf.h"

#define FNAME_LEN	4096
#define AT_FDCWD	-100

const volatile bool failed_only = false;
const volatile u64 flags_mask = 0;		/* -f: any of these open flags */
const volatile bool full_path = false;		/* -F */
const volatile u32 path_prefix_len = 0;		/* --path */
const volatile char path_prefix[NAME_LEN] = {};
const volatile bool exit_only = false;		/* user space: x86-64 only */

/* x86-64's numbers for the calls sys_exit_openat's program is also attached
 * to (ctx->nr tells them apart when there is no entry to say) */
#define NR_OPEN		2
#define NR_OPENAT2	437

enum open_call { CALL_OPEN, CALL_OPENAT, CALL_OPENAT2 };

struct start {
	const char *filename;
	u64 flags;
	u32 mode;
	s32 dfd;
	u32 call;
};

struct event {
	struct task_head task;
	s32 ret;
	s32 dfd;
	u64 flags;
	u32 mode;
	u32 call;		/* enum open_call */
	u32 path_len;		/* bytes of buf[] holding the path as passed, with NUL */
	u32 full_len;		/* bytes after it holding the absolute path (-F), with NUL */
	u8 full_truncated;
	char buf[4 * PATH_BUF];
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

/* A call's start from its first four arguments, however they were read:
 * the entry tracepoint's fields, or (exit_only) the registers the call was
 * made with. False when -f turns the call away. */
static __always_inline bool start_of(struct start *s, u32 call, u64 a0, u64 a1, u64 a2, u64 a3)
{
	struct open_how how = {};

	s->call = call;
	if (call == CALL_OPEN) {
		s->dfd = AT_FDCWD;
		s->filename = (const char *)a0;
		s->flags = a1;
		s->mode = a2;
	} else {
		s->dfd = a0;
		s->filename = (const char *)a1;
		if (call == CALL_OPENAT2) {
			bpf_probe_read_user(&how, sizeof(how), (void *)a2);
			a2 = how.flags;
			a3 = how.mode;
		}
		s->flags = a2;
		s->mode = a3;
	}
	return !flags_mask || s->flags & flags_mask;
}

static __always_inline int enter(struct syscall_enter *ctx, u32 call)
{
	struct start s;

	if (should_trace() &&
	    start_of(&s, call, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]))
		start_save((u32)bpf_get_current_pid_tgid(), &s);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int open_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_OPEN);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int openat_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_OPENAT);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int openat2_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_OPENAT2);
}

/* exit_only: the call's start, from the user registers it was made with
 * (the kernel leaves them as they were until it returns). False when the
 * filters turn the call away. */
static __always_inline bool call_args(struct syscall_exit *ctx, struct start *s)
{
	struct pt_regs *regs;
	u32 call = ctx->nr == NR_OPEN ? CALL_OPEN :
		   ctx->nr == NR_OPENAT2 ? CALL_OPENAT2 : CALL_OPENAT;

	if (!should_trace())
		return false;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	return start_of(s, call, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM2_SYSCALL(regs),
			PT_REGS_PARM3_SYSCALL(regs), PT_REGS_PARM4_SYSCALL(regs));
}

/* The absolute path for -F, appended to e->buf after the path as passed. */
static __always_inline void resolve(struct event *e, const struct start *s)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct path_walk *w = scratch(&walk_heap);
	u32 off = BOUND(e->path_len, FNAME_LEN - 1), len, pos;
	bool truncated = false;
	struct path p;
	struct file *f;

	if (!w)
		return;
	if (e->ret >= 0) {
		f = fd_file(task, e->ret);
		if (!f)
			return;
		file_path(f, &p);
	} else if (e->buf[0] == '/') {
		return;		/* already absolute */
	} else if (s->dfd == AT_FDCWD) {
		cwd_path(task, &p);
	} else {
		f = fd_file(task, s->dfd);
		if (!f)
			return;
		file_path(f, &p);
	}
	len = build_path(w, p.dentry, p.mnt, &truncated);
	len = BOUND(len, PATH_BUF - 1);
	bpf_probe_read_kernel(&e->buf[off], len, w->buf);
	pos = off + len;
	if (e->ret < 0) {
		/* the directory, "/", then the relative path as passed */
		long n;

		if (len > 1) {
			e->buf[BOUND(pos, 2 * PATH_BUF - 1)] = '/';
			pos++;
		}
		n = bpf_probe_read_kernel_str(&e->buf[BOUND(pos, 2 * PATH_BUF - 1)], FNAME_LEN,
					      e->buf);
		if (n > 1)
			pos += n - 1;
	}
	e->buf[BOUND(pos, 4 * PATH_BUF - 1)] = 0;
	e->full_len = (pos - off + 1) & (4 * PATH_BUF - 1);
	e->full_truncated = truncated;
}

static __always_inline bool prefix_matches(const char *p)
{
	for (u32 i = 0; i < NAME_LEN; i++) {
		if (i >= path_prefix_len)
			return true;
		if (p[i] != path_prefix[i])
			return false;
	}
	return true;
}

/* Every open exit: one program, also attached to sys_exit_open and
 * sys_exit_openat2 (where they exist) by the driver, so the path walk is
 * verified once. openat is the call every architecture has. */
SEC("tracepoint/syscalls/sys_exit_openat")
int open_exit(struct syscall_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct start args, *s = &args;
	struct event *e;
	u64 size;
	long n;

	if (exit_only) {
		if (!call_args(ctx, &args))
			return 0;
	} else {
		s = saved_start(tid);
		if (!s)
			return 0;
	}
	if (failed_only && ctx->ret >= 0)
		goto out;
	e = task_event(&heap);
	if (!e)
		goto out;
	e->ret = ctx->ret;
	e->dfd = s->dfd;
	e->flags = s->flags;
	e->mode = s->mode;
	e->call = s->call;
	e->full_len = 0;
	e->full_truncated = 0;
	n = bpf_probe_read_user_str(e->buf, FNAME_LEN, s->filename);
	e->path_len = n > 0 ? n : 1;
	if (n <= 0)
		e->buf[0] = 0;
	if (full_path)
		resolve(e, s);
	if (path_prefix_len &&
	    !prefix_matches(e->full_len ? &e->buf[BOUND(e->path_len, FNAME_LEN - 1)] : e->buf))
		goto out;
	size = offsetof(struct event, buf) + e->path_len + e->full_len;
	if (size > sizeof(*e))
		size = sizeof(*e);
	emit(ctx, e, size);
out:
	if (!exit_only)
		start_done(tid, s);
	return 0;
}
