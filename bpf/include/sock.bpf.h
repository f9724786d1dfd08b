/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sockets behind descriptors, and the struct sock fields the snoop tools
 * show. Everything is read with CO-RE, following the layout changes that
 * broke BCC's offset-based reads: sk_protocol stopped being a bitfield in
 * 5.6, and inet_sock's option bitfields moved into inet_flags in 6.6.
 */
#ifndef SNOOP_SOCK_BPF_H
#define SNOOP_SOCK_BPF_H

#include "fs.bpf.h"

#define AF_INET		2
#define AF_INET6	10

#define S_IFMT		0170000
#define S_IFSOCK	0140000

/* The socket behind an open file, or NULL when the file is not a socket. */
static __always_inline struct socket *file_socket(struct file *f)
{
	struct socket *sock;

	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(f, private_data);
	/* an O_PATH descriptor of a socket's name in the file system has an
	 * S_IFSOCK inode too, but no socket: only a real one points back */
	if (!sock || BPF_CORE_READ(sock, file) != f)
		return NULL;
	return sock;
}

/* The struct sock behind fd in task's table, or NULL. */
static __always_inline struct sock *fd_sock(struct task_struct *task, int fd)
{
	struct socket *sock = file_socket(fd_file(task, fd));

	return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

static __always_inline u16 sock_family(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_family);
}

/* IPPROTO_*: a u16 since 5.6, an 8-bit bitfield before. */
static __always_inline u16 sock_protocol(struct sock *sk)
{
	return BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
}

/* The local port in host order (for raw sockets, the protocol). */
static __always_inline u16 sock_local_port(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_num);
}

/* The ifindex of the device the socket is bound to (SO_BINDTODEVICE or an
 * IPv6 link-local scope), 0 when none. */
static __always_inline int sock_bound_dev_if(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_bound_dev_if);
}

/* The local (bound) address in network order into addr: 4 bytes for
 * AF_INET, 16 for AF_INET6 (on kernels built without IPv6, zeros). */
static __always_inline void sock_local_addr(struct sock *sk, u16 family, u8 addr[16])
{
	if (family == AF_INET)
		bpf_core_read(addr, 4, &sk->__sk_common.skc_rcv_saddr);
	else if (family == AF_INET6 && bpf_core_field_exists(sk->__sk_common.skc_v6_rcv_saddr))
		bpf_core_read(addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
}

/* The options that change what bind() does, as BCC's bindsnoop shows them
 * (its OPTS letters FTNRr, in this bit order). */
enum sock_bind_opt {
	SOCK_OPT_FREEBIND		= 1 << 0,	/* IP_FREEBIND, IPV6_FREEBIND */
	SOCK_OPT_TRANSPARENT		= 1 << 1,	/* IP_TRANSPARENT, IPV6_TRANSPARENT */
	SOCK_OPT_BIND_ADDRESS_NO_PORT	= 1 << 2,	/* IP_BIND_ADDRESS_NO_PORT */
	SOCK_OPT_REUSEADDR		= 1 << 3,	/* SO_REUSEADDR */
	SOCK_OPT_REUSEPORT		= 1 << 4,	/* SO_REUSEPORT */
};

/* inet_sock before 6.6, where these options were bitfields of their own */
struct inet_sock___pre_6_6 {
	__u8 freebind: 1;
	__u8 transparent: 1;
	__u8 bind_address_no_port: 1;
} __attribute__((preserve_access_index));

/* The enum sock_bind_opt bits set on sk, which must be an AF_INET or
 * AF_INET6 socket (an inet_sock). */
static __always_inline u32 sock_bind_opts(struct sock *sk)
{
	struct inet_sock *inet = (void *)sk;
	u32 opts = 0;

	if (bpf_core_field_exists(inet->inet_flags)) {
		/* INET_FLAGS_* bit numbers, unchanged since they appeared in 6.6 */
		unsigned long flags = BPF_CORE_READ(inet, inet_flags);

		if (flags & (1UL << INET_FLAGS_FREEBIND))
			opts |= SOCK_OPT_FREEBIND;
		if (flags & (1UL << INET_FLAGS_TRANSPARENT))
			opts |= SOCK_OPT_TRANSPARENT;
		if (flags & (1UL << INET_FLAGS_BIND_ADDRESS_NO_PORT))
			opts |= SOCK_OPT_BIND_ADDRESS_NO_PORT;
	} else {
		struct inet_sock___pre_6_6 *old = (void *)sk;

		if (BPF_CORE_READ_BITFIELD_PROBED(old, freebind))
			opts |= SOCK_OPT_FREEBIND;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, transparent))
			opts |= SOCK_OPT_TRANSPARENT;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, bind_address_no_port))
			opts |= SOCK_OPT_BIND_ADDRESS_NO_PORT;
	}
	if (BPF_CORE_READ_BITFIELD_PROBED(&sk->__sk_common, skc_reuse))
		opts |= SOCK_OPT_REUSEADDR;
	if (BPF_CORE_READ_BITFIELD_PROBED(&sk->__sk_common, skc_reuseport))
		opts |= SOCK_OPT_REUSEPORT;
	return opts;
}

#endif /* SNOOP_SOCK_BPF_H */
