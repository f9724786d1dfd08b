// SPDX-License-Identifier: GPL-2.0
/*
 * mountsnoop: one event per mount(), umount2() or call of the new mount API
 * (fsopen, fsconfig, fsmount, move_mount, fspick, open_tree, open_tree_attr,
 * mount_setattr), a syscall tool (syscall.bpf.h). Entry remembers the call,
 * its raw arguments, which of them are strings, and the caller's mount
 * namespace. Exit reads the strings (and struct mount_attr) from the caller's
 * memory, which the kernel has just copied in, so the pages are resident, and
 * sends one event with the result. User space names and decodes everything.
 */
#include "syscall.bpf.h"

#define NARGS		5
#define STR_MAX		4096	/* one string with its NUL: PATH_MAX, and a page of mount data */
#define STR_BUF		16384	/* the strings of one call: mount() has four */

const volatile bool filter_mntns = false;	/* --mntns: consult mntns_filter */

enum call {
	CALL_MOUNT, CALL_UMOUNT, CALL_FSOPEN, CALL_FSCONFIG, CALL_FSMOUNT, CALL_MOVE_MOUNT,
	CALL_FSPICK, CALL_OPEN_TREE, CALL_OPEN_TREE_ATTR, CALL_MOUNT_SETATTR,
};

enum event_flag {
	ATTR_READ = 1,		/* attr[] holds the call's struct mount_attr */
	TRUNCATED = 1 << 8,	/* << i: argument i was cut at STR_MAX bytes */
};
SNOOP_KEEP(enum event_flag);
SNOOP_KEEP(enum fsconfig_command);	/* for user space to name fsconfig's cmd */

struct start {
	u64 ts_ns;
	u64 args[NARGS];	/* as many as the call has; the others 0 */
	enum call call;
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
	enum call call;
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

static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	s->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	if (filter_mntns && !bpf_map_lookup_elem(&mntns_filter, &s->mnt_ns))
		return false;
	s->ts_ns = bpf_ktime_get_ns();
	return true;
}

#define ARG(i)	(1 << (i))

/* fsconfig(fd, cmd, key, value, aux): what value points to depends on cmd */
static __always_inline u8 fsconfig_strs(u32 cmd)
{
	if (cmd == FSCONFIG_SET_STRING || cmd == FSCONFIG_SET_PATH || cmd == FSCONFIG_SET_PATH_EMPTY)
		return ARG(2) | ARG(3);
	return ARG(2);
}

/* mount(source, target, fstype, flags, data) */
SYSCALL_ENTER(mount, .call = CALL_MOUNT, .args = SYSCALL_ARGS(5),
	      .strs = ARG(0) | ARG(1) | ARG(2) | ARG(4))
/* umount2(target, flags): its tracepoint is named umount */
SYSCALL_ENTER(umount, .call = CALL_UMOUNT, .args = SYSCALL_ARGS(2), .strs = ARG(0))
/* fsopen(fs_name, flags) */
SYSCALL_ENTER(fsopen, .call = CALL_FSOPEN, .args = SYSCALL_ARGS(2), .strs = ARG(0))
SYSCALL_ENTER(fsconfig, .call = CALL_FSCONFIG, .args = SYSCALL_ARGS(5),
	      .strs = fsconfig_strs(ctx->args[1]),
	      .blobs = ctx->args[1] == FSCONFIG_SET_BINARY ? ARG(3) : 0)
/* fsmount(fs_fd, flags, attr_flags) */
SYSCALL_ENTER(fsmount, .call = CALL_FSMOUNT, .args = SYSCALL_ARGS(3))
/* move_mount(from_dfd, from_path, to_dfd, to_path, flags) */
SYSCALL_ENTER(move_mount, .call = CALL_MOVE_MOUNT, .args = SYSCALL_ARGS(5),
	      .strs = ARG(1) | ARG(3))
/* fspick(dfd, path, flags) */
SYSCALL_ENTER(fspick, .call = CALL_FSPICK, .args = SYSCALL_ARGS(3), .strs = ARG(1))
/* open_tree(dfd, path, flags) */
SYSCALL_ENTER(open_tree, .call = CALL_OPEN_TREE, .args = SYSCALL_ARGS(3), .strs = ARG(1))
/* open_tree_attr(dfd, path, flags, attr, size): 6.15 and later */
SYSCALL_ENTER(open_tree_attr, .call = CALL_OPEN_TREE_ATTR, .args = SYSCALL_ARGS(5),
	      .strs = ARG(1))
/* mount_setattr(dfd, path, flags, attr, size) */
SYSCALL_ENTER(mount_setattr, .call = CALL_MOUNT_SETATTR, .args = SYSCALL_ARGS(5),
	      .strs = ARG(1))

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

static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	struct task_struct *task;
	u64 size;

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
	return size < sizeof(*e) ? size : sizeof(*e);
}

SYSCALL_EXIT(mount)
