// SPDX-License-Identifier: GPL-2.0
/*
 * opensnoop: one event per open(), openat() or openat2(), a syscall tool
 * (syscall.bpf.h). Where the kernel lets tracing programs read a task's saved
 * user registers (exit_only, set by user space: x86-64 only), the exit alone
 * does everything: it applies the filters and takes the call's arguments from
 * the registers it was made with, so no entry program runs and a filtered-out
 * call costs one program, not two. Elsewhere the entry applies the filters
 * and saves the arguments for the exit. The exit reads the path (the kernel
 * has copied it by then, so its page is resident), applies the path filter,
 * and for -F resolves the absolute path: from the returned descriptor on
 * success, else from the directory the call was relative to.
 */
#include "path.bpf.h"
#include "syscall.bpf.h"

#define FNAME_LEN	4096

const volatile u64 flags_mask = 0;		/* -f: any of these open flags */
const volatile bool full_path = false;		/* -F */
const volatile u32 path_prefix_len = 0;		/* --path */
const volatile char path_prefix[NAME_LEN] = {};

/* x86-64's numbers for the calls sys_exit_openat's program is also attached
 * to (ctx->nr tells them apart when there is no entry to say) */
#define NR_OPEN		2
#define NR_OPENAT2	437

enum call { CALL_OPEN, CALL_OPENAT, CALL_OPENAT2 };

struct start {
	const char *filename;
	u64 flags;
	u32 mode;
	s32 dfd;
	enum call call;
};

struct event {
	struct task_head task;
	s32 ret;
	s32 dfd;
	u64 flags;
	u32 mode;
	enum call call;
	u32 path_len;		/* bytes of buf[] holding the path as passed, with NUL */
	u32 full_len;		/* bytes after it holding the absolute path (-F), with NUL */
	u8 full_truncated;
	char buf[4 * PATH_BUF];
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

/* s->call's start from its first four arguments, however they were read:
 * the entry tracepoint's fields, or (exit_only) the registers the call was
 * made with. False when -f turns the call away. */
static __always_inline bool start_of(struct start *s, u64 a0, u64 a1, u64 a2, u64 a3)
{
	struct open_how how = {};

	if (s->call == CALL_OPEN) {
		s->dfd = AT_FDCWD;
		s->filename = (const char *)a0;
		s->flags = a1;
		s->mode = a2;
	} else {
		s->dfd = a0;
		s->filename = (const char *)a1;
		if (s->call == CALL_OPENAT2) {
			bpf_probe_read_user(&how, sizeof(how), (void *)a2);
			a2 = how.flags;
			a3 = how.mode;
		}
		s->flags = a2;
		s->mode = a3;
	}
	return !flags_mask || s->flags & flags_mask;
}

static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
{
	return start_of(s, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SYSCALL_ENTER(open, .call = CALL_OPEN)
SYSCALL_ENTER(openat, .call = CALL_OPENAT)
SYSCALL_ENTER(openat2, .call = CALL_OPENAT2)

/* exit_only: the call's start, from the user registers it was made with
 * (the kernel leaves them as they were until it returns). */
static __always_inline bool start_at_exit(struct syscall_exit *ctx, struct start *s)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	s->call = ctx->nr == NR_OPEN ? CALL_OPEN : ctx->nr == NR_OPENAT2 ? CALL_OPENAT2 : CALL_OPENAT;
	return start_of(s, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM2_SYSCALL(regs),
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

	if (!w || (e->ret < 0 && e->buf[0] == '/'))	/* failed, and already absolute */
		return;
	if (!(e->ret >= 0 ? fd_path(task, e->ret, &p) : dfd_path(task, s->dfd, &p)))
		return;
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

static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	u64 size;
	long n;

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
		return 0;
	size = offsetof(struct event, buf) + e->path_len + e->full_len;
	return size < sizeof(*e) ? size : sizeof(*e);
}

/* openat is the call every architecture has */
SYSCALL_EXIT_OR(openat, start_at_exit)
