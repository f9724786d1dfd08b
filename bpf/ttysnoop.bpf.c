// SPDX-License-Identifier: GPL-2.0
/*
 * ttysnoop: what is written to one tty. No tty tracepoint exists, so the
 * write family is traced: write(), pwrite64(), writev(), pwritev() and
 * pwritev2(). Entry applies the filters, then keeps the call only when its
 * fd is the target tty (matched by device number, through /dev/tty,
 * /dev/console and /dev/tty0 too) and remembers the user buffer: a syscall
 * tool (syscall.bpf.h). Exit copies what the call actually wrote, so a
 * partial write that is then retried is not shown twice and a failed write
 * shows no data.
 */
#include "fs.bpf.h"
#include "syscall.bpf.h"

SNOOP_KEEP(enum {
	DATA_MAX = 8192,	/* bytes of one write shown at most, a power of two */
});
#define IOV_READ	16	/* iovec segments read at most */

#define MINORBITS	20	/* the kernel's dev_t: major << 20 | minor */
#define MKDEV(ma, mi)	(((u32)(ma) << MINORBITS) | (mi))
#define S_IFMT		00170000
#define S_IFCHR		0020000

/* Device files that stand for another tty: the writer's controlling tty,
 * the console, the foreground virtual console. */
#define DEV_TTY		MKDEV(5, 0)
#define DEV_CONSOLE	MKDEV(5, 1)
#define DEV_TTY0	MKDEV(4, 0)

const volatile u32 target_rdev = 0;	/* the tty, in the kernel's dev_t encoding */
const volatile u32 target_fs = 0;	/* a pts: its devpts instance (s_dev); 0: any */
const volatile u32 limit_bytes = 4096;	/* -s SIZE x -c COUNT, at most DATA_MAX */

enum call { CALL_WRITE, CALL_PWRITE64, CALL_WRITEV, CALL_PWRITEV, CALL_PWRITEV2 };

struct start {
	u64 buf;	/* the data, or for the vector calls the iovec array */
	u64 count;	/* bytes, or iovec entries */
	s32 fd;
	enum call call;
};

struct event {
	struct task_head task;	/* ts_ns is the time of exit, when the data is written */
	s64 ret;
	s32 fd;
	enum call call;
	u32 data_len;		/* bytes of data[] */
	bool truncated;		/* data_len < ret: cut by the limit or IOV_READ, or unreadable */
	u8 data[DATA_MAX * 2];	/* slack: the verifier sees each copy's bounds, not their sum */
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

/* A tty file opened through an alias is the target when its tty is: the
 * tty's driver and index give its device number, and a pts slave's
 * driver_data is its dentry in /dev/pts, which names the devpts instance. */
static __always_inline bool alias_is_target(struct file *f)
{
	struct tty_file_private *priv = BPF_CORE_READ(f, private_data);
	struct tty_struct *tty = BPF_CORE_READ(priv, tty);
	struct tty_driver *drv = BPF_CORE_READ(tty, driver);
	struct dentry *pts;

	if (!tty || !drv)
		return false;
	if (MKDEV(BPF_CORE_READ(drv, major),
		  BPF_CORE_READ(drv, minor_start) + BPF_CORE_READ(tty, index)) != target_rdev)
		return false;
	if (!target_fs)
		return true;
	pts = BPF_CORE_READ(tty, driver_data);
	return BPF_CORE_READ(pts, d_sb, s_dev) == target_fs;
}

static __always_inline bool is_target(struct file *f)
{
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	u32 rdev;

	if ((BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFCHR)
		return false;
	rdev = BPF_CORE_READ(inode, i_rdev);
	if (rdev == target_rdev)
		return !target_fs || BPF_CORE_READ(inode, i_sb, s_dev) == target_fs;
	if (rdev == DEV_TTY || rdev == DEV_CONSOLE || rdev == DEV_TTY0)
		return alias_is_target(f);
	return false;
}

static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
{
	struct file *f = fd_file((void *)bpf_get_current_task(), s->fd);

	return f && is_target(f);
}

/* The data (or iovec array) and its length, of every call: */
#define WRITE(name, nr)								\
	SYSCALL_ENTER(name, .call = nr, .fd = ctx->args[0], .buf = ctx->args[1],	\
		      .count = ctx->args[2])
/* write(fd, buf, count) */
WRITE(write, CALL_WRITE)
/* pwrite64(fd, buf, count, pos): a tty cannot seek, so this fails, but it
 * is shown failing */
WRITE(pwrite64, CALL_PWRITE64)
/* writev(fd, vec, vlen) */
WRITE(writev, CALL_WRITEV)
/* pwritev(fd, vec, vlen, pos_l, pos_h) */
WRITE(pwritev, CALL_PWRITEV)
/* pwritev2(fd, vec, vlen, pos_l, pos_h, flags): pos -1 writes a tty */
WRITE(pwritev2, CALL_PWRITEV2)

/* Copy up to want bytes from the iovec array into e->data; returns the
 * bytes copied. */
static __always_inline u32 copy_iov(struct event *e, const struct iovec *vec, u64 vlen, u32 want)
{
	u32 off = 0;

	for (int i = 0; i < IOV_READ; i++) {
		struct iovec iov;
		u64 n;

		if (i >= vlen || off >= want)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), &vec[i]))
			break;
		n = iov.iov_len < want - off ? iov.iov_len : want - off;
		if (n > DATA_MAX)	/* it is not: this tells the verifier */
			break;
		if (bpf_probe_read_user(&e->data[BOUND(off, DATA_MAX - 1)], n, iov.iov_base))
			break;
		off += n;
	}
	return off;
}

/* Only calls whose entry matched the tty have a start. */
static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	u32 want = 0, len = 0;

	e->ret = ctx->ret;
	e->fd = s->fd;
	e->call = s->call;
	if (ctx->ret > 0)
		want = ctx->ret < limit_bytes ? ctx->ret : limit_bytes;
	if (want > DATA_MAX)
		want = DATA_MAX;
	if (s->call >= CALL_WRITEV)
		len = copy_iov(e, (const struct iovec *)s->buf, s->count, want);
	else if (want && !bpf_probe_read_user(e->data, want, (const void *)s->buf))
		len = want;
	e->data_len = len;
	e->truncated = ctx->ret > 0 && len < ctx->ret;
	return offsetof(struct event, data) + BOUND(len, DATA_MAX * 2 - 1);
}

SYSCALL_EXIT(write)
