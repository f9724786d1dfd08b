// SPDX-License-Identifier: GPL-2.0
/*
 * sofdsnoop: one event per message that passes file descriptors over a Unix
 * socket (SCM_RIGHTS), sent by sendmsg()/sendmmsg() or received by
 * recvmsg()/recvmmsg(), a syscall tool (syscall.bpf.h). Entry keeps only
 * calls on Unix sockets, and remembers the socket and the user message
 * header(s). Exit reads the control messages from user memory: for a send, the
 * buffer the kernel has just copied (the fds are the sender's); for a
 * receive, the buffer the kernel has just filled with the fds it installed
 * in the receiver. Each fd is resolved to its file there, in the calling
 * task's own table.
 */
#include "path.bpf.h"
#include "sock.bpf.h"
#include "syscall.bpf.h"

#define MAX_FDS		16	/* fds collected per message; more: FD_TRUNCATED */
#define MAX_CMSGS	8	/* control messages walked per message */
#define MAX_MSGS	8	/* messages of one sendmmsg()/recvmmsg() */
#define NAMES_BUF	8192	/* bytes of names per event, a power of two */

#define AF_UNIX		1
#define SOL_SOCKET	1
#define SCM_RIGHTS	1
#define MSG_CTRUNC	8
#define CMSG_ALIGN(len)	(((len) + sizeof(long) - 1) & ~(sizeof(long) - 1))

enum call { CALL_SENDMSG, CALL_RECVMSG, CALL_SENDMMSG, CALL_RECVMMSG };

enum fd_flag {
	FD_TRUNCATED = 1,	/* more fds or control messages than collected */
	FD_CTRUNC = 2,		/* receive: MSG_CTRUNC, the kernel dropped some */
};
SNOOP_KEEP(enum fd_flag);

struct start {
	u64 msg;		/* struct user_msghdr * or struct mmsghdr * */
	u64 sock_ino;
	s32 sock_fd;
	u32 vlen;		/* messages at msg: 1, or the mmsg vector's length */
	enum call call;
};

/*
 * Each passed fd is named in names[] by a path, or for a file on no mount
 * (socket, pipe, anon inode, memfd) by its bare dentry name, which user space
 * dresses with the inode and filesystem as readlink(2) of /proc/PID/fd shows
 * it. Parallel arrays, indexed like fds[].
 */
struct event {
	struct task_head task;	/* ts_ns is the time of exit */
	s64 ret;
	u64 sock_ino;		/* inode of the socket */
	s32 sock_fd;
	enum call call;
	u32 index;		/* the message's place in an mmsg vector */
	u32 nfds;		/* fds collected in fds[] */
	u32 flags;		/* enum fd_flag */
	u16 detached;		/* bit i: fd i is on no mount, its name is bare */
	u16 path_truncated;	/* bit i: fd i's path lacks leading components */
	s32 fds[MAX_FDS];
	u64 ino[MAX_FDS];
	u32 magic[MAX_FDS];	/* the file's superblock s_magic */
	u16 name_len[MAX_FDS];	/* bytes of its name in names[], with the NUL; 0: none */
	/* bytes used in names[]; kept in map memory, not on the stack, so that
	 * the verifier sees an unknown value in each round of name_fd() and
	 * checks that costly callback once, not once per possible length */
	volatile u32 names_len;
	char names[NAMES_BUF + PATH_BUF];
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
{
	struct file *f;
	struct socket *sock;
	struct user_msghdr h;

	/* A send with no control buffer cannot pass fds: most sendmsg() calls.
	 * (If the header cannot be read yet, exit will know.) A receive without
	 * one is kept: fds sent to it are dropped, which it reports. */
	if (s->call == CALL_SENDMSG && !bpf_probe_read_user(&h, sizeof(h), (void *)s->msg) &&
	    h.msg_controllen < sizeof(struct cmsghdr))
		return false;
	f = fd_file((void *)bpf_get_current_task(), s->sock_fd);
	sock = file_socket(f);
	if (!sock || sock_family(BPF_CORE_READ(sock, sk)) != AF_UNIX)
		return false;
	s->sock_ino = BPF_CORE_READ(f, f_inode, i_ino);
	return true;
}

/* sendmsg(fd, msg, flags), recvmsg(fd, msg, flags) */
SYSCALL_ENTER(sendmsg, .call = CALL_SENDMSG, .sock_fd = ctx->args[0], .msg = ctx->args[1],
	      .vlen = 1)
SYSCALL_ENTER(recvmsg, .call = CALL_RECVMSG, .sock_fd = ctx->args[0], .msg = ctx->args[1],
	      .vlen = 1)
/* sendmmsg(fd, mmsg, vlen, flags), recvmmsg(fd, mmsg, vlen, flags, timeout) */
SYSCALL_ENTER(sendmmsg, .call = CALL_SENDMMSG, .sock_fd = ctx->args[0], .msg = ctx->args[1],
	      .vlen = ctx->args[2])
SYSCALL_ENTER(recvmmsg, .call = CALL_RECVMMSG, .sock_fd = ctx->args[0], .msg = ctx->args[1],
	      .vlen = ctx->args[2])

/*
 * Name the file behind fd number i of this CPU's event, in the calling
 * task's table, appending the name to e->names. A global function, verified
 * once on its own, however many fds a message has: build_path() is costly.
 * (Global functions and bounded loops, not bpf_loop() and its callbacks:
 * kernels before 5.13 load no program that takes a callback's address.)
 */
__noinline int name_fd(u32 i)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct event *e = scratch(&heap);
	struct path_walk *w = scratch(&walk_heap);
	bool truncated = false;
	struct file *f;
	struct path p;
	u32 at;
	long n;

	if (!e || !w || e->names_len >= NAMES_BUF)
		return 1;
	i = BOUND(i, MAX_FDS - 1);
	f = fd_file(task, e->fds[i]);
	if (!f)
		return 0;
	file_path(f, &p);
	if (p.dentry == BPF_CORE_READ(p.dentry, d_parent) &&
	    p.dentry != BPF_CORE_READ(p.mnt, mnt_root)) {
		at = BOUND(e->names_len, NAMES_BUF - 1);
		n = bpf_probe_read_kernel_str(&e->names[at], NAME_LEN,
					      BPF_CORE_READ(p.dentry, d_name.name));
		if (n < 1)
			return 0;
		e->detached |= 1 << i;
	} else {
		n = build_path(w, p.dentry, p.mnt, &truncated);
		n = BOUND(n, PATH_BUF - 1);
		at = BOUND(e->names_len, NAMES_BUF - 1);
		bpf_probe_read_kernel(&e->names[at], n + 1, w->buf);
		n++;
		/* no branch on truncated: clang would thread it back into
		 * build_path's loops and triple what the verifier walks */
		e->path_truncated |= (u16)truncated << i;
	}
	e->ino[i] = BPF_CORE_READ(f, f_inode, i_ino);
	e->magic[i] = BPF_CORE_READ(f, f_inode, i_sb, s_magic);
	e->name_len[i] = n;
	e->names_len = at + n;
	return 0;
}

/* Append the k fds at src in user memory to this CPU's event; nonzero when
 * not all of them fit. */
__noinline int append_fds(u64 src, u32 k)
{
	struct event *e = scratch(&heap);
	u32 j;

	if (!e)
		return 0;
	for (j = 0; j < MAX_FDS && j < k; j++) {
		if (e->nfds >= MAX_FDS)
			break;
		bpf_probe_read_user(&e->fds[BOUND(e->nfds, MAX_FDS - 1)], sizeof(int),
				    (void *)(src + j * sizeof(int)));
		e->nfds++;
	}
	return j < k;
}

/* Collect the SCM_RIGHTS fds of the control buffer [control, control + len)
 * in user memory into this CPU's event. A global function, as is
 * append_fds(): the verifier checks each once, on its own, not once per turn
 * of the loop around it in each state of the program around that. */
__noinline int collect_fds(u64 control, u64 len)
{
	struct event *e = scratch(&heap);
	u64 off = 0;
	int c;

	if (!e)
		return 0;
	for (c = 0; c < MAX_CMSGS; c++) {
		struct cmsghdr h;

		if (off + sizeof(h) > len || bpf_probe_read_user(&h, sizeof(h), (void *)(control + off)))
			return 0;
		if (h.cmsg_len < sizeof(h) || h.cmsg_len > len - off)
			return 0;
		if (h.cmsg_level == SOL_SOCKET && h.cmsg_type == SCM_RIGHTS &&
		    append_fds(control + off + sizeof(h), (h.cmsg_len - sizeof(h)) / sizeof(int)))
			e->flags |= FD_TRUNCATED;
		off += CMSG_ALIGN(h.cmsg_len);
	}
	if (off + sizeof(struct cmsghdr) <= len)
		e->flags |= FD_TRUNCATED;
	return 0;
}

static __always_inline bool is_recv(u32 call)
{
	return call == CALL_RECVMSG || call == CALL_RECVMMSG;
}

static __always_inline bool is_mmsg(u32 call)
{
	return call == CALL_SENDMMSG || call == CALL_RECVMMSG;
}

/* What the exit hands to one_msg() for each message of the call, in map
 * memory: a global function takes no pointer to its caller's stack (before
 * 5.12). */
struct msgs {
	struct start s;
	s64 ret;
};

SNOOP_SCRATCH(msgs_heap, struct msgs);

/* The event of message i of the call into this CPU's event: 1 if it passed
 * fds, to be sent; 0 if not; -1 when the messages cannot be read. */
__noinline int one_msg(u32 i)
{
	struct msgs *m = scratch(&msgs_heap);
	struct event *e = scratch(&heap);
	struct user_msghdr h;
	u64 stride;

	if (!m || !e)
		return -1;
	stride = is_mmsg(m->s.call) ? sizeof(struct mmsghdr) : sizeof(struct user_msghdr);
	if (bpf_probe_read_user(&h, sizeof(h), (void *)(m->s.msg + i * stride)))
		return -1;
	e->nfds = 0;
	e->flags = 0;
	if (is_recv(m->s.call) && (h.msg_flags & MSG_CTRUNC))
		e->flags |= FD_CTRUNC;
	collect_fds((u64)h.msg_control, h.msg_controllen);
	/* a receive whose fds were all dropped still says so */
	if (!e->nfds && !(e->flags & FD_CTRUNC))
		return 0;
	fill_task(&e->task);
	e->ret = m->ret;
	e->sock_fd = m->s.sock_fd;
	e->sock_ino = m->s.sock_ino;
	e->call = m->s.call;
	e->index = i;
	e->detached = 0;
	e->path_truncated = 0;
	__builtin_memset(e->name_len, 0, sizeof(e->name_len));
	__builtin_memset(e->ino, 0, sizeof(e->ino));
	__builtin_memset(e->magic, 0, sizeof(e->magic));
	e->names_len = 0;
	for (u32 k = 0; k < MAX_FDS; k++) {
		if (k >= e->nfds || name_fd(k))
			break;
	}
	return 1;
}

/*
 * A failed send is reported with its error (its fds did not pass); a failed
 * receive received nothing, and its buffer holds stale data: skipped. Of an
 * mmsg call, only the messages it reports done are read. Each message that
 * passed fds is an event of its own, sent by one_msg().
 */
static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	struct msgs *m = scratch(&msgs_heap);
	u32 n = 1, len;
	int sent;

	if (!m)
		return 0;
	m->s = *s;
	m->ret = ctx->ret;
	if (m->ret < 0 && is_recv(m->s.call))
		return 0;
	if (!name_wanted(&e->task))	/* -n: the events are one_msg()'s */
		return 0;
	if (is_mmsg(m->s.call)) {
		if (!m->ret)
			return 0;
		/* a failed sendmmsg() failed on its first message */
		if (m->ret > 0)
			n = m->ret < m->s.vlen ? m->ret : m->s.vlen;
	}
	for (u32 i = 0; i < MAX_MSGS; i++) {
		if (i >= n)
			break;
		sent = one_msg(i);
		if (sent < 0)
			break;
		if (!sent)
			continue;
		len = e->names_len;
		if (len > sizeof(e->names))
			len = sizeof(e->names);
		emit(ctx, e, offsetof(struct event, names) + len);
	}
	return 0;
}

SYSCALL_EXIT(sendmsg)
