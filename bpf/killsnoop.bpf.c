// SPDX-License-Identifier: GPL-2.0
/*
 * killsnoop: one event per kill(), tkill(), tgkill(), pidfd_send_signal(),
 * rt_sigqueueinfo() or rt_tgsigqueueinfo(), a syscall tool (syscall.bpf.h).
 * Entry applies the filters (sender, signal, target) and remembers the call;
 * a pidfd is resolved to its pid there. signal:signal_generate, which fires
 * inside the call in the sender's context, names the target task (tcomm).
 * Exit sends the event.
 */
#include "fs.bpf.h"
#include "syscall.bpf.h"

#define PID_FS_MAGIC	0x50494446	/* pidfs, where pidfds live since 6.9 */

SNOOP_KEEP(enum { SIG_MAX = 64 });			/* the highest signal number */

const volatile u32 filter_tpid = SNOOP_UNSET;		/* -T */
const volatile bool filter_sigs = false;		/* -s: consult sig_mask */
const volatile u64 sig_mask[2] = {};			/* bit n: signal n, 0..SIG_MAX */

enum call {
	CALL_KILL, CALL_TKILL, CALL_TGKILL, CALL_PIDFD_SEND_SIGNAL, CALL_RT_SIGQUEUEINFO,
	CALL_RT_TGSIGQUEUEINFO,
};

enum kill_flag {
	KILL_PIDFD_RESOLVED = 1,	/* tpid was read from the pidfd's struct pid */
};
SNOOP_KEEP(enum kill_flag);

struct start {
	s32 tpid;		/* pid or tid as passed; for a pidfd, the pid behind it */
	s32 tgid;		/* tgkill, rt_tgsigqueueinfo: the thread group; else 0 */
	s32 fd;			/* pidfd_send_signal: the pidfd; else -1 */
	u32 sig;
	enum call call;
	u32 flags;		/* enum kill_flag */
	char tcomm[TASK_COMM_LEN];
};

struct event {
	struct task_head task;
	s32 ret;
	struct start call;	/* the call, as its entry saw it */
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

static __always_inline bool sig_wanted(u32 sig)
{
	if (!filter_sigs)
		return true;
	if (sig > SIG_MAX)
		return false;
	return sig_mask[BOUND(sig >> 6, 1)] & (1ULL << (sig & 63));
}

/* The task a struct pid names (first of its PIDTYPE_PID list), or NULL. */
static __always_inline struct task_struct *pid_task_of(struct pid *p)
{
	struct hlist_node *first = BPF_CORE_READ(p, tasks[PIDTYPE_PID].first);

	if (!first)
		return NULL;
	return (void *)first - bpf_core_field_offset(struct task_struct, pid_links);
}

/* The struct pid behind a pidfd: the inode's on pidfs (6.9+), else the
 * anon-inode file's private data. */
static __always_inline struct pid *pidfd_pid(struct file *f)
{
	struct inode *ino = BPF_CORE_READ(f, f_inode);

	if (BPF_CORE_READ(ino, i_sb, s_magic) == PID_FS_MAGIC)
		return BPF_CORE_READ(ino, i_private);
	return BPF_CORE_READ(f, private_data);
}

/*
 * The pidfd's target, read at entry from the caller's fd table: the pid
 * number in the initial namespace and, while the task lives, its comm. A fd
 * that is not a pidfd may yield garbage here; the call then fails with
 * EBADF and user space shows the target as unknown.
 */
static __always_inline void resolve_pidfd(struct start *s)
{
	struct file *f = fd_file((void *)bpf_get_current_task(), s->fd);
	struct pid *p = f ? pidfd_pid(f) : NULL;
	struct task_struct *task;

	if (p && !bpf_probe_read_kernel(&s->tpid, sizeof(s->tpid), &p->numbers[0].nr)) {
		s->flags |= KILL_PIDFD_RESOLVED;
		task = pid_task_of(p);
		if (task)
			bpf_probe_read_kernel_str(s->tcomm, sizeof(s->tcomm), &task->comm);
	}
}

static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
{
	if (!sig_wanted(s->sig))
		return false;
	if (s->call == CALL_PIDFD_SEND_SIGNAL)
		resolve_pidfd(s);
	return filter_tpid == SNOOP_UNSET || (u32)s->tpid == filter_tpid ||
	       (u32)s->tgid == filter_tpid;
}

SYSCALL_ENTER(kill, .call = CALL_KILL, .tpid = ctx->args[0], .fd = -1, .sig = ctx->args[1])
SYSCALL_ENTER(tkill, .call = CALL_TKILL, .tpid = ctx->args[0], .fd = -1, .sig = ctx->args[1])
SYSCALL_ENTER(tgkill, .call = CALL_TGKILL, .tgid = ctx->args[0], .tpid = ctx->args[1],
	      .fd = -1, .sig = ctx->args[2])
SYSCALL_ENTER(pidfd_send_signal, .call = CALL_PIDFD_SEND_SIGNAL, .fd = ctx->args[0],
	      .sig = ctx->args[1])
SYSCALL_ENTER(rt_sigqueueinfo, .call = CALL_RT_SIGQUEUEINFO, .tpid = ctx->args[0], .fd = -1,
	      .sig = ctx->args[1])
SYSCALL_ENTER(rt_tgsigqueueinfo, .call = CALL_RT_TGSIGQUEUEINFO, .tgid = ctx->args[0],
	      .tpid = ctx->args[1], .fd = -1, .sig = ctx->args[2])

/* The target of a call in flight, as the kernel generates the signal. */
SEC("tracepoint/signal/signal_generate")
int signal_generate(struct trace_event_raw_signal_generate *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct start *s = saved_start(tid);

	if (!s || s->tcomm[0] || ctx->sig != s->sig || ctx->pid != s->tpid || s->tpid <= 0)
		return 0;
	bpf_probe_read_kernel_str(s->tcomm, sizeof(s->tcomm), ctx->comm);
	return 0;
}

static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	e->ret = ctx->ret;
	e->call = *s;
	return sizeof(*e);
}

SYSCALL_EXIT(kill)
