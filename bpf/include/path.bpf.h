/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Absolute paths built by walking dentries (bpf_d_path is not available to
 * tracepoint programs), for the tools that show them.
 */
#ifndef SNOOP_PATH_BPF_H
#define SNOOP_PATH_BPF_H

#include "fs.bpf.h"

struct path_walk {
	/* where the walk up has got to */
	struct dentry *d;
	struct mount *mnt;
	u32 off, depth;
	bool done;
	const unsigned char *names[PATH_DEPTH];
	char buf[PATH_BUF + NAME_LEN];
};

SNOOP_SCRATCH(walk_heap, struct path_walk);

/*
 * build_path()'s two loops, and each step of them, are global functions:
 * the verifier checks each once, on its own. Inlined, every step was checked
 * again for each iteration of each loop that could reach it, in the state of
 * the program around it (tens of thousands of instructions, 40-80 ms of a
 * tool's start). They keep the walk's state in this CPU's walk_heap, where
 * build_path() put it.
 */

/* Go one step up from w->d, crossing into the parent mount at a mount's
 * root; nonzero when the walk is over (w->done if it reached the root). */
__noinline int path_walk_up(void)
{
	struct path_walk *w = scratch(&walk_heap);
	struct dentry *d, *parent;
	struct mount *mnt, *up;
	u32 depth;

	if (!w)
		return 1;
	/* plain loads first: inside BPF_CORE_READ, w->... would be relocated too */
	d = w->d;
	mnt = w->mnt;
	parent = BPF_CORE_READ(d, d_parent);
	if (d == BPF_CORE_READ(mnt, mnt.mnt_root) || d == parent) {
		up = BPF_CORE_READ(mnt, mnt_parent);
		if (up == mnt || !up) {
			w->done = true;
			return 1;
		}
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		return 0;
	}
	depth = w->depth;
	if (depth >= PATH_DEPTH)
		return 1;
	w->names[depth] = BPF_CORE_READ(d, d_name.name);
	w->depth = depth + 1;
	w->d = parent;
	return 0;
}

/* Append "/" and name i of the walk to w->buf; nonzero when it no longer
 * fits. */
__noinline int path_walk_append(u32 i)
{
	struct path_walk *w = scratch(&walk_heap);
	u32 off;
	long n;

	if (!w)
		return 1;
	off = w->off;
	if (off > PATH_BUF - NAME_LEN - 1)
		return 1;
	w->buf[off] = '/';
	n = bpf_probe_read_kernel_str(&w->buf[off + 1], NAME_LEN, w->names[i & (PATH_DEPTH - 1)]);
	w->off = off + (n > 1 ? n : 1);
	return 0;
}

/* The walk up from w->d, its names left in w->names (w->depth of them). */
__noinline int path_walk_names(void)
{
	for (int i = 0; i < PATH_DEPTH * 2; i++)
		if (path_walk_up())
			break;
	return 0;
}

/* The names joined into w->buf, from the top down; nonzero when they did
 * not all fit. */
__noinline int path_walk_join(void)
{
	struct path_walk *w = scratch(&walk_heap);
	u32 depth;

	if (!w)
		return 1;
	depth = w->depth;
	/* up to depth, and out at once: a loop that went on past the names
	 * would be checked twice per turn (with and without a name added) */
	for (u32 k = 0; k < PATH_DEPTH; k++) {
		if (k >= depth)
			break;
		if (path_walk_append(depth - 1 - k))
			return 1;
	}
	return 0;
}

/*
 * Write the absolute path of (dentry, vfsmnt) into w->buf (w is this CPU's
 * walk_heap), NUL-terminated, crossing mount points up to the task's root
 * mount. Returns the length without the NUL; sets *truncated when the walk
 * or the buffer ran out, in which case the path lacks its leading components.
 */
static __always_inline u32 build_path(struct path_walk *w, struct dentry *d,
				      struct vfsmount *vmnt, bool *truncated)
{
	u32 off;

	w->d = d;
	w->mnt = container_of(vmnt, struct mount, mnt);
	w->off = w->depth = 0;
	w->done = false;
	path_walk_names();
	*truncated = !w->done;
	if (!w->depth) {
		w->buf[0] = '/';
		w->buf[1] = 0;
		return 1;
	}
	if (path_walk_join())
		*truncated = true;
	off = w->off & (PATH_BUF - 1);
	w->buf[off] = 0;
	return off;
}

#endif /* SNOOP_PATH_BPF_H */
