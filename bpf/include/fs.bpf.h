/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Files behind descriptors, and the paths that name them (path.bpf.h builds
 * them into absolute paths). Kernel structures are read with CO-RE, so these
 * work across kernel versions.
 */
#ifndef SNOOP_FS_BPF_H
#define SNOOP_FS_BPF_H

#include "snoop.bpf.h"

#define PATH_DEPTH	32	/* components walked at most */
#define NAME_LEN	256	/* one component, with its NUL */
#define PATH_BUF	4096	/* an absolute path we build, a power of two */
#define AT_FDCWD	-100	/* a *at() call's directory: the working directory */

/* The struct file behind fd in task's table, or NULL. */
static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *f = NULL;

	if (!fdt || fd < 0 || (u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* Where an address of the current task is mapped: its file (NULL for
 * anonymous memory), the mapping's start and its page offset in the file. */
struct vma_info {
	struct file *file;
	u64 start;
	u64 pgoff;
};

static __attribute__((unused)) long
vma_info_of(struct task_struct *task, struct vm_area_struct *vma, struct vma_info *v)
{
	v->file = BPF_CORE_READ(vma, vm_file);
	v->start = BPF_CORE_READ(vma, vm_start);
	v->pgoff = BPF_CORE_READ(vma, vm_pgoff);
	return 0;
}

/* Fill *v for addr; it stays zeroed when nothing is mapped there (or the
 * task's mmap lock is busy). */
#define find_vma_info(addr, v) \
	bpf_find_vma(bpf_get_current_task_btf(), (addr), vma_info_of, (v), 0)

/*
 * Where bpf_find_vma() is missing (before 5.17), the VMA is found in the
 * red-black tree by address that kernels before 6.1 keep (mm->mm_rb; since,
 * a maple tree). Without the mmap lock: a mapping changed meanwhile may be
 * missed, but every read is a probe read. A program that calls bpf_find_vma()
 * takes its callback's address, which kernels before 5.13 refuse even in
 * code that never runs: so the programs that look VMAs up come in pairs,
 * one of each (a tool's variants "find_vma" and "rbtree"), and
 * vma_info_at(addr, v, tree) takes a tree known when compiling.
 */
struct mm_struct___rb {
	struct rb_root mm_rb;
};

struct vm_area_struct___rb {
	struct rb_node vm_rb;
};

#define VMA_TREE_DEPTH	48	/* a red-black tree of 2^24 VMAs is at most 48 deep */

static __always_inline void find_vma_tree(u64 addr, struct vma_info *v)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct mm_struct___rb *mm = (void *)BPF_CORE_READ(task, mm);
	struct rb_node *node = BPF_CORE_READ(mm, mm_rb.rb_node);
	u64 at = bpf_core_field_offset(struct vm_area_struct___rb, vm_rb);

	for (int i = 0; i < VMA_TREE_DEPTH && node; i++) {
		struct vm_area_struct *vma = (void *)node - at;

		if (addr < BPF_CORE_READ(vma, vm_start)) {
			node = BPF_CORE_READ(node, rb_left);
		} else if (addr >= BPF_CORE_READ(vma, vm_end)) {
			node = BPF_CORE_READ(node, rb_right);
		} else {
			vma_info_of(task, vma, v);
			return;
		}
	}
}

#define vma_info_at(addr, v, tree) \
	((tree) ? find_vma_tree((addr), (v)) : (void)find_vma_info((addr), (v)))

/* The path of an open file. */
static __always_inline void file_path(struct file *f, struct path *p)
{
	p->dentry = BPF_CORE_READ(f, f_path.dentry);
	p->mnt = BPF_CORE_READ(f, f_path.mnt);
}

#define MNT_NS_INTERNAL		(-22L)	/* a private mount's mnt_ns: ERR_PTR(-EINVAL) */
#define OVERLAYFS_SUPER_MAGIC	0x794c7630
#define FUSE_SUPER_MAGIC	0x65735546

/*
 * The path of a mapped file, as the task that mapped it named it. Since 6.6
 * a file that overlayfs (or FUSE passthrough) maps is its backing file, in
 * a layer's private mount, whose path is relative to that layer: the path
 * the task opened is the backing file's user_path. A backing file is told
 * by its private mount and by that path being on overlayfs or FUSE (a
 * memfd's mount is private too, and no backing file follows its file).
 */
static __always_inline void mapped_file_path(struct file *f, struct path *p)
{
	struct backing_file *b = (void *)f;
	struct mount *m;
	struct path user;
	unsigned long magic;

	file_path(f, p);
	if (!bpf_core_type_exists(struct backing_file))
		return;
	m = container_of(p->mnt, struct mount, mnt);
	if ((long)BPF_CORE_READ(m, mnt_ns) != MNT_NS_INTERNAL)
		return;
	user.mnt = BPF_CORE_READ(b, user_path.mnt);
	user.dentry = BPF_CORE_READ(b, user_path.dentry);
	magic = BPF_CORE_READ(user.dentry, d_sb, s_magic);
	if (user.mnt && (magic == OVERLAYFS_SUPER_MAGIC || magic == FUSE_SUPER_MAGIC))
		*p = user;
}

/* The task's working directory. */
static __always_inline void cwd_path(struct task_struct *task, struct path *p)
{
	p->dentry = BPF_CORE_READ(task, fs, pwd.dentry);
	p->mnt = BPF_CORE_READ(task, fs, pwd.mnt);
}

/* The path of the file behind fd in task's table; false when it has none. */
static __always_inline bool fd_path(struct task_struct *task, int fd, struct path *p)
{
	struct file *f = fd_file(task, fd);

	if (f)
		file_path(f, p);
	return f;
}

/* The path of the directory a *at() call's dfd names: the working directory
 * for AT_FDCWD, else the file behind it; false when it has none. */
static __always_inline bool dfd_path(struct task_struct *task, int dfd, struct path *p)
{
	if (dfd != AT_FDCWD)
		return fd_path(task, dfd, p);
	cwd_path(task, p);
	return true;
}

#endif /* SNOOP_FS_BPF_H */
