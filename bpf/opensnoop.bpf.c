// SPDX-License-Identifier: GPL-2.0
/*
 * opensnoop: one event per open(), openat() or openat2(). Entry applies the
 * filters and remembers the arguments by thread; exit reads the path (the
 * kernel has copied it by then, so its page is resident), applies the failed
 * and path filters, and for -F resolves the absolute path: from the returned
 * descriptor on success, else from the directory the call was relative to.
 */
#include "fs.bpf.h"

#define FNAME_LEN	4096
#define AT_FDCWD	-100

const volatile bool failed_only = false;
const volatile u64 flags_mask = 0;		/* -f: any of these open flags */
const volatile bool full_path = false;		/* -F */
const volatile u32 path_prefix_len = 0;		/* --path */
const volatile char path_prefix[NAME_LEN] = {};

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
SNOOP_SCRATCH(walk_heap, struct path_walk);

static __always_inline int enter(const char *filename, u64 flags, u32 mode, s32 dfd, u32 call)
{
	struct start s = {
		.filename = filename, .flags = flags, .mode = mode, .dfd = dfd, .call = call,
	};
	u32 tid;

	if (!should_trace())
		return 0;
	if (flags_mask && !(flags & flags_mask))
		return 0;
	tid = (u32)bpf_get_current_pid_tgid();
	start_save(tid, &s);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int open_enter(struct syscall_enter *ctx)
{
	return enter((const char *)ctx->args[0], ctx->args[1], ctx->args[2], AT_FDCWD, CALL_OPEN);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int openat_enter(struct syscall_enter *ctx)
{
	return enter((const char *)ctx->args[1], ctx->args[2], ctx->args[3], ctx->args[0],
		     CALL_OPENAT);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int openat2_enter(struct syscall_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return enter((const char *)ctx->args[1], how.flags, how.mode, ctx->args[0],
		     CALL_OPENAT2);
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
	struct start *s = saved_start(tid);
	struct event *e;
	u64 size;
	long n;

	if (!s)
		return 0;
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
	start_done(tid, s);
	return 0;
}
