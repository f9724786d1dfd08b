// SPDX-License-Identifier: GPL-2.0
/*
 * syncsnoop: one event per sync(), syncfs(), fsync(), fdatasync(), msync() or
 * sync_file_range(), a syscall tool (syscall.bpf.h). Entry remembers the
 * call, its arguments and the time; exit measures the latency, applies the
 * latency filter, and resolves the file: the one behind the fd, or for
 * msync() the file mapped at the start address.
 */
#include "path.bpf.h"
#include "syscall.bpf.h"

const volatile u64 min_ns = 0;			/* --min-ms */

enum call {
	CALL_SYNC, CALL_SYNCFS, CALL_FSYNC, CALL_FDATASYNC, CALL_MSYNC,
	CALL_SYNC_FILE_RANGE, CALL_SYNC_FILE_RANGE2, CALL_ARM_SYNC_FILE_RANGE,
};

#define NO_FD	-1

struct start {
	u64 entry_ns;	/* the time of entry */
	u64 addr;	/* msync: start */
	u64 len;	/* msync: len; sync_file_range: nbytes */
	u64 off;	/* sync_file_range: offset */
	u64 flags;	/* msync, sync_file_range */
	s32 fd;		/* NO_FD for sync and msync */
	enum call call;
};

struct event {
	struct task_head task;	/* ts_ns is the time of entry */
	u64 lat_ns;
	s64 ret;
	struct start call;	/* the call, as its entry saw it */
	u32 path_len;		/* bytes of path[] with its NUL; 0: no file */
	u8 path_truncated;
	char path[PATH_BUF];
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
{
	s->entry_ns = bpf_ktime_get_ns();
	return true;
}

SYSCALL_ENTER(sync, .call = CALL_SYNC, .fd = NO_FD)
SYSCALL_ENTER(syncfs, .call = CALL_SYNCFS, .fd = ctx->args[0])
SYSCALL_ENTER(fsync, .call = CALL_FSYNC, .fd = ctx->args[0])
SYSCALL_ENTER(fdatasync, .call = CALL_FDATASYNC, .fd = ctx->args[0])
/* msync(start, len, flags) */
SYSCALL_ENTER(msync, .call = CALL_MSYNC, .fd = NO_FD, .addr = ctx->args[0],
	      .len = ctx->args[1], .flags = ctx->args[2])
/* sync_file_range(fd, offset, nbytes, flags) */
SYSCALL_ENTER(sync_file_range, .call = CALL_SYNC_FILE_RANGE, .fd = ctx->args[0],
	      .off = ctx->args[1], .len = ctx->args[2], .flags = ctx->args[3])
/* sync_file_range2(fd, flags, offset, nbytes): some 32-bit ABIs */
SYSCALL_ENTER(sync_file_range2, .call = CALL_SYNC_FILE_RANGE2, .fd = ctx->args[0],
	      .flags = ctx->args[1], .off = ctx->args[2], .len = ctx->args[3])
/* arm_sync_file_range: 32-bit arm's name for sync_file_range2 */
SYSCALL_ENTER(arm_sync_file_range, .call = CALL_ARM_SYNC_FILE_RANGE, .fd = ctx->args[0],
	      .flags = ctx->args[1], .off = ctx->args[2], .len = ctx->args[3])

/* The file the call was about, written to e->path (msync's found by
 * bpf_find_vma(), or in the VMA tree: fs.bpf.h). */
static __always_inline void resolve(struct event *e, bool tree)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct path_walk *w;
	struct file *f = NULL;
	bool truncated = false;
	struct path p;
	u32 len;

	if (e->call.call == CALL_MSYNC) {
		struct vma_info v = {};

		vma_info_at(e->call.addr, &v, tree);
		f = v.file;
	} else if (e->call.fd != NO_FD)
		f = fd_file(task, e->call.fd);
	w = scratch(&walk_heap);
	if (!f || !w)
		return;
	if (e->call.call == CALL_MSYNC)
		mapped_file_path(f, &p);
	else
		file_path(f, &p);
	if (p.dentry == BPF_CORE_READ(p.dentry, d_parent) &&
	    p.dentry != BPF_CORE_READ(p.mnt, mnt_root)) {
		/* on no mount (memfd, shared anonymous memory): its bare name */
		long n = bpf_probe_read_kernel_str(e->path, NAME_LEN,
						   BPF_CORE_READ(p.dentry, d_name.name));

		e->path_len = n > 1 ? n : 0;
		return;
	}
	len = build_path(w, p.dentry, p.mnt, &truncated);
	len = BOUND(len, PATH_BUF - 1);
	bpf_probe_read_kernel(e->path, len + 1, w->buf);
	e->path_len = len + 1;
	e->path_truncated = truncated;
}

static __always_inline u64 fill(struct syscall_exit *ctx, struct start *s, struct event *e,
				 bool tree)
{
	u64 lat_ns = bpf_ktime_get_ns() - s->entry_ns;

	if (lat_ns < min_ns)
		return 0;
	e->task.ts_ns = s->entry_ns;
	e->lat_ns = lat_ns;
	e->ret = ctx->ret;
	e->call = *s;
	e->path_len = 0;
	e->path_truncated = 0;
	resolve(e, tree);
	return offsetof(struct event, path) + BOUND(e->path_len, PATH_BUF - 1) + 1;
}

/* msync()'s mapping found by bpf_find_vma(), or in the VMA tree: the
 * variants find_vma and rbtree, each its own exit program */
static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	return fill(ctx, s, e, false);
}

static __always_inline u64 fill_rbtree(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	return fill(ctx, s, e, true);
}

SYSCALL_EXIT(sync)
SYSCALL_EXIT_VARIANT(sync, rbtree, fill_rbtree)
