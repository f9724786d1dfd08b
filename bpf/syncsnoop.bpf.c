// SPDX-License-Identifier: GPL-2.0
/*
 * syncsnoop: one event per sync(), syncfs(), fsync(), fdatasync(), msync() or
 * sync_file_range(). Entry applies the filters and remembers the call, its
 * arguments and the time by thread; exit measures the latency, applies the
 * failed and latency filters, and resolves the file: the one behind the fd,
 * or for msync() the file mapped at the start address.
 */
#include "path.bpf.h"

const volatile bool failed_only = false;	/* -x */
const volatile u64 min_ns = 0;			/* --min-ms */
const volatile u32 calls_mask = 0;		/* --call: bit 1 << enum sync_call; 0: all */

enum sync_call {
	CALL_SYNC, CALL_SYNCFS, CALL_FSYNC, CALL_FDATASYNC, CALL_MSYNC,
	CALL_SYNC_FILE_RANGE, CALL_SYNC_FILE_RANGE2, CALL_ARM_SYNC_FILE_RANGE,
};

#define NO_FD	-1

struct start {
	u64 ts_ns;
	u64 addr;	/* msync: start */
	u64 len;	/* msync: len; sync_file_range: nbytes */
	u64 off;	/* sync_file_range: offset */
	u64 flags;	/* msync, sync_file_range */
	s32 fd;		/* NO_FD for sync and msync */
	u32 call;	/* enum sync_call */
};

struct event {
	struct task_head task;	/* ts_ns is the time of entry */
	u64 lat_ns;
	s64 ret;
	u64 addr;
	u64 len;
	u64 off;
	u64 flags;
	s32 fd;
	u32 call;
	u32 path_len;		/* bytes of path[] with its NUL; 0: no file */
	u8 path_truncated;
	char path[PATH_BUF];
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

static __always_inline int enter(u32 call, s32 fd, u64 addr, u64 len, u64 off, u64 flags)
{
	struct start s = {
		.addr = addr, .len = len, .off = off, .flags = flags, .fd = fd, .call = call,
	};
	u32 tid;

	if (!should_trace())
		return 0;
	if (calls_mask && !(calls_mask & (1U << call)))
		return 0;
	s.ts_ns = bpf_ktime_get_ns();
	tid = (u32)bpf_get_current_pid_tgid();
	start_save(tid, &s);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sync")
int sync_enter(struct syscall_enter *ctx)
{
	return enter(CALL_SYNC, NO_FD, 0, 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_syncfs")
int syncfs_enter(struct syscall_enter *ctx)
{
	return enter(CALL_SYNCFS, ctx->args[0], 0, 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_fsync")
int fsync_enter(struct syscall_enter *ctx)
{
	return enter(CALL_FSYNC, ctx->args[0], 0, 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_fdatasync")
int fdatasync_enter(struct syscall_enter *ctx)
{
	return enter(CALL_FDATASYNC, ctx->args[0], 0, 0, 0, 0);
}

/* msync(start, len, flags) */
SEC("tracepoint/syscalls/sys_enter_msync")
int msync_enter(struct syscall_enter *ctx)
{
	return enter(CALL_MSYNC, NO_FD, ctx->args[0], ctx->args[1], 0, ctx->args[2]);
}

/* sync_file_range(fd, offset, nbytes, flags) */
SEC("tracepoint/syscalls/sys_enter_sync_file_range")
int sync_file_range_enter(struct syscall_enter *ctx)
{
	return enter(CALL_SYNC_FILE_RANGE, ctx->args[0], 0, ctx->args[2], ctx->args[1],
		     ctx->args[3]);
}

/* sync_file_range2(fd, flags, offset, nbytes): some 32-bit ABIs */
SEC("tracepoint/syscalls/sys_enter_sync_file_range2")
int sync_file_range2_enter(struct syscall_enter *ctx)
{
	return enter(CALL_SYNC_FILE_RANGE2, ctx->args[0], 0, ctx->args[3], ctx->args[2],
		     ctx->args[1]);
}

/* arm_sync_file_range: 32-bit arm's name for sync_file_range2 */
SEC("tracepoint/syscalls/sys_enter_arm_sync_file_range")
int arm_sync_file_range_enter(struct syscall_enter *ctx)
{
	return enter(CALL_ARM_SYNC_FILE_RANGE, ctx->args[0], 0, ctx->args[3], ctx->args[2],
		     ctx->args[1]);
}

/* The file the call was about, written to e->path. */
static __always_inline void resolve(struct event *e)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct path_walk *w;
	struct file *f = NULL;
	bool truncated = false;
	struct path p;
	u32 len;

	if (e->call == CALL_MSYNC) {
		struct vma_info v = {};

		find_vma_info(e->addr, &v);
		f = v.file;
	} else if (e->fd != NO_FD)
		f = fd_file(task, e->fd);
	w = scratch(&walk_heap);
	if (!f || !w)
		return;
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

/*
 * Every sync-family exit: one program, verified once, which the driver also
 * attaches to the other calls' sys_exit tracepoints (their contexts are the
 * same). The call is known from the entry.
 */
SEC("tracepoint/syscalls/sys_exit_sync")
int sync_exit(struct syscall_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct start *s = saved_start(tid);
	struct event *e;
	u64 lat_ns;

	if (!s)
		return 0;
	lat_ns = bpf_ktime_get_ns() - s->ts_ns;
	if ((failed_only && ctx->ret >= 0) || lat_ns < min_ns)
		goto out;
	e = task_event(&heap);
	if (!e)
		goto out;
	e->task.ts_ns = s->ts_ns;
	e->lat_ns = lat_ns;
	e->ret = ctx->ret;
	e->addr = s->addr;
	e->len = s->len;
	e->off = s->off;
	e->flags = s->flags;
	e->fd = s->fd;
	e->call = s->call;
	e->path_len = 0;
	e->path_truncated = 0;
	resolve(e);
	emit(ctx, e, offsetof(struct event, path) + BOUND(e->path_len, PATH_BUF - 1) + 1);
out:
	start_done(tid, s);
	return 0;
}
