// SPDX-License-Identifier: GPL-2.0
/*
 * mountsnoop: one event per mount(), umount2() or call of the new mount API
 * (fsopen, fsconfig, fsmount, move_mount, fspick, open_tree, open_tree_attr,
 * mount_setattr). Entry applies the filters and remembers the call, its raw
 * arguments, which of them are strings, and the caller's mount namespace.
 * Exit reads the strings (and struct mount_attr) from the caller's memory,
 * which the kernel has just copied in, so the pages are resident, and sends
 * one event with the result. User space names and decodes everything.
 */
#include "snoop.bpf.h"

#define NARGS		5
#define STR_MAX		4096	/* one string with its NUL: PATH_MAX, and a page of mount data */
#define STR_BUF		16384	/* the strings of one call: mount() has four */

const volatile bool failed_only = false;	/* -x */
const volatile u32 calls_mask = 0;		/* --call: bit 1 << enum mount_call; 0: all */
const volatile bool filter_mntns = false;	/* --mntns: consult mntns_filter */

enum mount_call {
	CALL_MOUNT, CALL_UMOUNT, CALL_FSOPEN, CALL_FSCONFIG, CALL_FSMOUNT, CALL_MOVE_MOUNT,
	CALL_FSPICK, CALL_OPEN_TREE, CALL_OPEN_TREE_ATTR, CALL_MOUNT_SETATTR,
};

enum event_flag {
	ATTR_READ = 1,		/* attr[] holds the call's struct mount_attr */
	TRUNCATED = 1 << 8,	/* << i: argument i was cut at STR_MAX bytes */
};

struct start {
	u64 ts_ns;
	u64 args[NARGS];
	u32 call;		/* enum mount_call */
	u32 mnt_ns;
	u8 strs;		/* bit i: argument i is a string to read at exit */
	u8 blobs;		/* bit i: argument i points to args[4] bytes (fsconfig binary value) */
};

struct event {
	struct task_head task;	/* ts_ns: the call's entry */
	u64 lat_ns;
	s64 ret;
	u64 args[NARGS];	/* as the registers held them; unused ones 0 */
	u64 attr[4];		/* struct mount_attr: attr_set, attr_clr, propagation, userns_fd */
	u32 call;		/* enum mount_call */
	u32 mnt_ns;		/* the caller's mount namespace inode number */
	u32 ppid;
	u32 flags;		/* enum event_flag */
	s32 len[NARGS];		/* bytes of str[] that argument i holds (a string's with its
				 * NUL), in argument order; 0: not read or NULL; < 0: the
				 * read failed with this error */
	char pcomm[TASK_COMM_LEN];
	char str[STR_BUF + STR_MAX];	/* slack: the verifier sees masks, not sums */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u8);
} mntns_filter SEC(".maps");

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

/* nargs: the call's argument count. A program may not read past the end of
 * its tracepoint's record: attaching it would fail with EACCES. */
static __always_inline int enter(struct syscall_enter *ctx, u32 call, u32 nargs, u8 strs,
				 u8 blobs)
{
	struct task_struct *task;
	struct start s = {};
	u32 tid;

	if (!should_trace())
		return 0;
	if (calls_mask && !(calls_mask & (1U << call)))
		return 0;
	task = (void *)bpf_get_current_task();
	s.mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	if (filter_mntns && !bpf_map_lookup_elem(&mntns_filter, &s.mnt_ns))
		return 0;
	s.ts_ns = bpf_ktime_get_ns();
	s.call = call;
	s.strs = strs;
	s.blobs = blobs;
	for (int i = 0; i < NARGS; i++)
		if (i < nargs)
			s.args[i] = ctx->args[i];
	tid = (u32)bpf_get_current_pid_tgid();
	start_save(tid, &s);
	return 0;
}

#define ARG(i)	(1 << (i))

/* mount(source, target, fstype, flags, data) */
SEC("tracepoint/syscalls/sys_enter_mount")
int mount_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_MOUNT, 5, ARG(0) | ARG(1) | ARG(2) | ARG(4), 0);
}

/* umount2(target, flags): its tracepoint is named umount */
SEC("tracepoint/syscalls/sys_enter_umount")
int umount_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_UMOUNT, 2, ARG(0), 0);
}

/* fsopen(fs_name, flags) */
SEC("tracepoint/syscalls/sys_enter_fsopen")
int fsopen_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_FSOPEN, 2, ARG(0), 0);
}

/* fsconfig(fd, cmd, key, value, aux): what value points to depends on cmd */
SEC("tracepoint/syscalls/sys_enter_fsconfig")
int fsconfig_enter(struct syscall_enter *ctx)
{
	u32 cmd = ctx->args[1];

	if (cmd == FSCONFIG_SET_STRING || cmd == FSCONFIG_SET_PATH ||
	    cmd == FSCONFIG_SET_PATH_EMPTY)
		return enter(ctx, CALL_FSCONFIG, 5, ARG(2) | ARG(3), 0);
	if (cmd == FSCONFIG_SET_BINARY)
		return enter(ctx, CALL_FSCONFIG, 5, ARG(2), ARG(3));
	return enter(ctx, CALL_FSCONFIG, 5, ARG(2), 0);
}

/* fsmount(fs_fd, flags, attr_flags) */
SEC("tracepoint/syscalls/sys_enter_fsmount")
int fsmount_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_FSMOUNT, 3, 0, 0);
}

/* move_mount(from_dfd, from_path, to_dfd, to_path, flags) */
SEC("tracepoint/syscalls/sys_enter_move_mount")
int move_mount_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_MOVE_MOUNT, 5, ARG(1) | ARG(3), 0);
}

/* fspick(dfd, path, flags) */
SEC("tracepoint/syscalls/sys_enter_fspick")
int fspick_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_FSPICK, 3, ARG(1), 0);
}

/* open_tree(dfd, path, flags) */
SEC("tracepoint/syscalls/sys_enter_open_tree")
int open_tree_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_OPEN_TREE, 3, ARG(1), 0);
}

/* open_tree_attr(dfd, path, flags, attr, size): 6.15 and later */
SEC("tracepoint/syscalls/sys_enter_open_tree_attr")
int open_tree_attr_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_OPEN_TREE_ATTR, 5, ARG(1), 0);
}

/* mount_setattr(dfd, path, flags, attr, size) */
SEC("tracepoint/syscalls/sys_enter_mount_setattr")
int mount_setattr_enter(struct syscall_enter *ctx)
{
	return enter(ctx, CALL_MOUNT_SETATTR, 5, ARG(1), 0);
}

/* Copy the string and blob arguments into e->str, one after the other;
 * return the bytes used. */
static __always_inline u32 read_strings(struct event *e, struct start *s)
{
	u32 off = 0;

	for (int i = 0; i < NARGS; i++) {
		const void *p = (const void *)s->args[i];
		char *dst = &e->str[BOUND(off, STR_BUF - 1)];
		long n = 0;

		e->len[i] = 0;
		if (!p)
			continue;
		if (s->strs & ARG(i)) {
			n = bpf_probe_read_user_str(dst, STR_MAX, p);
			if (n == STR_MAX)
				e->flags |= TRUNCATED << i;
			/* some kernels return 0, not 1, for "" */
			if (n == 0) {
				*dst = 0;
				n = 1;
			}
		} else if (s->blobs & ARG(i)) {
			u64 size = s->args[4];

			if (size > STR_MAX) {
				size = STR_MAX;
				e->flags |= TRUNCATED << i;
			}
			n = bpf_probe_read_user(dst, size, p);
			if (n == 0)
				n = size;
		}
		e->len[i] = n;
		if (n > 0)
			off += n;
	}
	return off;
}

/*
 * Every call's exit: one program, verified once, which the driver also
 * attaches to the other calls' sys_exit tracepoints (their contexts are the
 * same). The call is known from the entry.
 */
SEC("tracepoint/syscalls/sys_exit_mount")
int mount_exit(struct syscall_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct start *s = saved_start(tid);
	struct task_struct *task;
	struct event *e;
	u64 size;

	if (!s)
		return 0;
	if (failed_only && ctx->ret >= 0)
		goto out;
	e = task_event(&heap);
	if (!e)
		goto out;
	e->task.ts_ns = s->ts_ns;
	e->lat_ns = bpf_ktime_get_ns() - s->ts_ns;
	e->ret = ctx->ret;
	e->call = s->call;
	e->mnt_ns = s->mnt_ns;
	e->flags = 0;
	for (int i = 0; i < NARGS; i++)
		e->args[i] = s->args[i];
	task = (void *)bpf_get_current_task();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&e->pcomm, task, real_parent, comm);

	__builtin_memset(e->attr, 0, sizeof(e->attr));
	/* the kernel refuses a struct mount_attr smaller than its first version */
	if ((s->call == CALL_MOUNT_SETATTR || s->call == CALL_OPEN_TREE_ATTR) && s->args[3] &&
	    s->args[4] >= sizeof(e->attr) &&
	    bpf_probe_read_user(e->attr, sizeof(e->attr), (void *)s->args[3]) == 0)
		e->flags |= ATTR_READ;

	size = offsetof(struct event, str) + read_strings(e, s);
	if (size > sizeof(*e))
		size = sizeof(*e);
	emit(ctx, e, size);
out:
	start_done(tid, s);
	return 0;
}
