// SPDX-License-Identifier: GPL-2.0
/*
 * statsnoop: one event per stat-family call (stat, lstat, fstat and their
 * new* forms, newfstatat, fstatat64, statx, statfs, fstatfs and the *64
 * forms: whichever this kernel has), a syscall tool (syscall.bpf.h): each
 * entry remembers the arguments; the exit reads the path or, for the calls on
 * a descriptor, resolves the file behind it.
 */
#include "path.bpf.h"
#include "syscall.bpf.h"

#define AT_EMPTY_PATH	0x1000

enum call {
	CALL_STAT, CALL_LSTAT, CALL_FSTAT, CALL_NEWSTAT, CALL_NEWLSTAT, CALL_NEWFSTAT,
	CALL_NEWFSTATAT, CALL_FSTATAT64, CALL_STATX, CALL_STATFS, CALL_FSTATFS,
	CALL_STATFS64, CALL_FSTATFS64,
};

/* What the call names the file by. */
enum kind {
	KIND_PATH,	/* a path, relative to the cwd */
	KIND_FD,	/* a descriptor */
	KIND_AT,	/* a path relative to a directory descriptor, and flags */
};

struct start {
	const char *filename;
	u64 flags;
	s32 fd;			/* KIND_FD: the descriptor; KIND_AT: the directory's */
	enum call call;
	enum kind kind;
};

struct event {
	struct task_head task;
	s64 ret;
	struct start call;	/* the call, as its entry saw it */
	u32 path_len;		/* bytes of path[] with its NUL; 0: none */
	u8 from_fd;		/* path[] is the file behind fd, resolved here */
	u8 path_truncated;
	char path[PATH_BUF];
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
{
	return true;
}

#define PATH_CALL(name, nr)							\
	SYSCALL_ENTER(name, .call = nr, .kind = KIND_PATH, .filename = (const char *)ctx->args[0])
#define FD_CALL(name, nr)							\
	SYSCALL_ENTER(name, .call = nr, .kind = KIND_FD, .fd = ctx->args[0])
/* (dfd, filename, statbuf, flag) */
#define AT_CALL(name, nr)							\
	SYSCALL_ENTER(name, .call = nr, .kind = KIND_AT, .fd = ctx->args[0],	\
		      .filename = (const char *)ctx->args[1], .flags = ctx->args[3])

PATH_CALL(stat, CALL_STAT)
PATH_CALL(lstat, CALL_LSTAT)
FD_CALL(fstat, CALL_FSTAT)
PATH_CALL(newstat, CALL_NEWSTAT)
PATH_CALL(newlstat, CALL_NEWLSTAT)
FD_CALL(newfstat, CALL_NEWFSTAT)
AT_CALL(newfstatat, CALL_NEWFSTATAT)
AT_CALL(fstatat64, CALL_FSTATAT64)
PATH_CALL(statfs, CALL_STATFS)
FD_CALL(fstatfs, CALL_FSTATFS)
PATH_CALL(statfs64, CALL_STATFS64)
FD_CALL(fstatfs64, CALL_FSTATFS64)
/* statx(dfd, filename, flags, mask, buffer) */
SYSCALL_ENTER(statx, .call = CALL_STATX, .kind = KIND_AT, .fd = ctx->args[0],
	      .filename = (const char *)ctx->args[1], .flags = ctx->args[2])

/* The file behind the call's fd (the cwd for AT_FDCWD), written to e->path. */
static __always_inline void resolve(struct event *e)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct path_walk *w = scratch(&walk_heap);
	bool truncated = false;
	struct path p;
	u32 len;

	if (!w || !(e->call.kind == KIND_AT ? dfd_path(task, e->call.fd, &p) :
					      fd_path(task, e->call.fd, &p)))
		return;
	len = build_path(w, p.dentry, p.mnt, &truncated);
	len = BOUND(len, PATH_BUF - 1);
	bpf_probe_read_kernel(e->path, len + 1, w->buf);
	e->path_len = len + 1;
	e->from_fd = 1;
	e->path_truncated = truncated;
}

/* The path as passed (the kernel has copied it by then, so its page is
 * resident) or, for the calls on a descriptor, the file behind it. */
static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	long n = 0;

	e->ret = ctx->ret;
	e->call = *s;
	e->from_fd = 0;
	e->path_truncated = 0;
	if (s->filename)
		n = bpf_probe_read_user_str(e->path, PATH_BUF, s->filename);
	e->path_len = n > 0 ? n : 0;
	/* fstat(fd), or fstatat(fd, "", AT_EMPTY_PATH): the file is the fd's */
	if (s->kind == KIND_FD || (s->kind == KIND_AT && (s->flags & AT_EMPTY_PATH) && n <= 1)) {
		e->path_len = 0;	/* no path if the fd has no file */
		resolve(e);
	}
	return offsetof(struct event, path) + BOUND(e->path_len, PATH_BUF - 1) + 1;
}

/* statx is the call every architecture has */
SYSCALL_EXIT(statx)
