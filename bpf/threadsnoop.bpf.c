// SPDX-License-Identifier: GPL-2.0
/*
 * threadsnoop: one event per new thread. By default from a uprobe on the C
 * library's pthread_create() (user space finds the library and the symbol's
 * file offset), with the start routine. With --all from task:task_newtask
 * with CLONE_THREAD, which also sees threads started without pthread_create
 * (Go, raw clone/clone3, io_uring workers) and knows the new thread's id;
 * there the uprobe only notes the start routine for the clone it leads to.
 *
 * The start routine is placed in its mapped file here, while that mapping
 * surely exists: the file's path, device, inode and the routine's offset in
 * it, so that user space can name it even after the process has exited.
 * The mapping is found by bpf_find_vma(), or in the VMA tree of kernels
 * without it: each program comes twice, one per variant (fs.bpf.h).
 */
#include "path.bpf.h"

#define CLONE_THREAD 0x00010000

const volatile bool all_threads = false;	/* --all: events from task_newtask */
const volatile u32 page_shift = 12;		/* vm_pgoff is in pages */

struct start {
	u64 func;	/* pthread_create's start routine */
};

struct event {
	struct task_head task;	/* the creating thread */
	u64 func;		/* start routine address; 0: unknown */
	u64 file_off;		/* func's offset in its mapped file */
	u64 ino;		/* that file's inode and device (kernel dev_t) */
	u32 dev;
	u32 new_tid;		/* --all: the new thread; 0 from the uprobe */
	u32 path_len;		/* bytes of path[] with its NUL; 0: no file */
	u8 path_truncated;
	char path[PATH_BUF];
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

/* Send an event for the start routine func (0: unknown), placed in its file. */
static __always_inline void report(void *ctx, u64 func, u32 new_tid, bool tree)
{
	struct vma_info v = {};
	struct event *e = scratch(&heap);
	struct path_walk *w = scratch(&walk_heap);
	bool truncated = false;
	struct inode *inode;
	struct file *file;
	struct path p;
	u32 len;

	if (!e || !w)
		return;
	fill_task(&e->task);
	e->func = func;
	e->new_tid = new_tid;
	e->file_off = e->ino = e->dev = 0;
	e->path_len = e->path_truncated = 0;
	if (func)
		vma_info_at(func, &v, tree);
	file = v.file;
	if (file) {
		inode = BPF_CORE_READ(file, f_inode);
		e->ino = BPF_CORE_READ(inode, i_ino);
		e->dev = BPF_CORE_READ(inode, i_sb, s_dev);
		e->file_off = func - v.start + (v.pgoff << page_shift);
		mapped_file_path(file, &p);
		len = build_path(w, p.dentry, p.mnt, &truncated);
		len = BOUND(len, PATH_BUF - 1);
		bpf_probe_read_kernel(e->path, len + 1, w->buf);
		e->path_len = len + 1;
		e->path_truncated = truncated;
	}
	emit(ctx, e, offsetof(struct event, path) + BOUND(e->path_len, PATH_BUF - 1) + 1);
}

/*
 * pthread_create(thread, attr, start_routine, arg). The section names no
 * target: user space attaches it to the library it found.
 */
static __always_inline int pthread_create(struct pt_regs *ctx, bool tree)
{
	struct start s = { .func = PT_REGS_PARM3(ctx) };
	u32 tid;

	if (!should_trace())
		return 0;
	if (!all_threads) {
		report(ctx, s.func, 0, tree);
		return 0;
	}
	/* for the clone this call is about to make, in this same thread */
	tid = (u32)bpf_get_current_pid_tgid();
	start_save(tid, &s);
	return 0;
}

SEC("uprobe")
int pthread_create_enter(struct pt_regs *ctx)
{
	return pthread_create(ctx, false);
}

SEC("uprobe")
int pthread_create_enter_rbtree(struct pt_regs *ctx)
{
	return pthread_create(ctx, true);
}

/* Runs in the creating thread, inside clone(); ctx->pid is the new task. */
static __always_inline int newtask(struct trace_event_raw_task_newtask *ctx, bool tree)
{
	struct start s = {};	/* func 0: unknown */

	if (!(ctx->clone_flags & CLONE_THREAD) || !should_trace())
		return 0;
	start_take((u32)bpf_get_current_pid_tgid(), &s);
	report(ctx, s.func, ctx->pid, tree);
	return 0;
}

SEC("tracepoint/task/task_newtask")
int task_newtask(struct trace_event_raw_task_newtask *ctx)
{
	return newtask(ctx, false);
}

SEC("tracepoint/task/task_newtask")
int task_newtask_rbtree(struct trace_event_raw_task_newtask *ctx)
{
	return newtask(ctx, true);
}
