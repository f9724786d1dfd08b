// SPDX-License-Identifier: GPL-2.0
/*
 * bindsnoop: one event per bind() of an IPv4 or IPv6 socket, a syscall tool
 * (syscall.bpf.h) of one call. Entry finds the socket behind the descriptor
 * (sockets of other families, and descriptors that are no socket, stop
 * there). Exit (after the kit's -E, include_failed, and --failed) applies -P,
 * reads what the bind made of the socket (protocol, local address and port,
 * bound device, the options that shaped the bind) and copies the caller's
 * sockaddr, which the kernel has just read and so is resident.
 */
#include "sock.bpf.h"
#include "syscall.bpf.h"

#define SOCKADDR_LEN	28	/* sizeof(struct sockaddr_in6), the largest inet one */
#define SA_BUF		32	/* room for it, a power of two */

const volatile bool filter_ports = false;	/* -P: consult port_filter */

enum call { CALL_BIND };

SNOOP_KEEP(enum sock_bind_opt);		/* for user space to letter opts */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u16);
	__type(value, u8);
} port_filter SEC(".maps");

struct start {
	struct sock *sk;
	u64 uaddr;		/* the caller's struct sockaddr */
	s32 addrlen;
	s32 fd;
	enum call call;
};

struct event {
	struct task_head task;
	s64 ret;
	s32 fd;
	s32 bound_dev_if;
	u32 opts;		/* enum sock_bind_opt */
	u16 family;		/* the socket's: AF_INET or AF_INET6 */
	u16 protocol;		/* IPPROTO_* */
	u16 port;		/* bound port after success, requested port after failure */
	u16 sa_len;		/* bytes of sa[] copied; 0: the sockaddr was unreadable */
	u8 addr[16];		/* the socket's local address after the call */
	u8 sa[SA_BUF];		/* the sockaddr as passed, SOCKADDR_LEN bytes at most */
};

SNOOP_STARTS(struct start);

SNOOP_SCRATCH(heap, struct event);

static __always_inline bool start_wanted(struct syscall_enter *ctx, struct start *s)
{
	u16 family;

	s->sk = fd_sock((void *)bpf_get_current_task(), s->fd);
	if (!s->sk)
		return false;
	family = sock_family(s->sk);
	return family == AF_INET || family == AF_INET6;
}

/* bind(fd, uaddr, addrlen) */
SYSCALL_ENTER(bind, .call = CALL_BIND, .fd = ctx->args[0], .uaddr = ctx->args[1],
	      .addrlen = ctx->args[2])

static __always_inline u64 fill_event(struct syscall_exit *ctx, struct start *s, struct event *e)
{
	u32 n = s->addrlen < 0 ? 0 : s->addrlen;

	if (n > SOCKADDR_LEN)
		n = SOCKADDR_LEN;
	e->sa_len = 0;
	if (n && !bpf_probe_read_user(e->sa, BOUND(n, SA_BUF - 1), (void *)s->uaddr))
		e->sa_len = n;
	e->port = 0;
	if (!ctx->ret)
		e->port = sock_local_port(s->sk);
	else if (e->sa_len >= 4)	/* sin_port and sin6_port: bytes 2-3, big-endian */
		e->port = e->sa[2] << 8 | e->sa[3];
	if (filter_ports && !bpf_map_lookup_elem(&port_filter, &e->port))
		return 0;
	e->ret = ctx->ret;
	e->fd = s->fd;
	e->family = sock_family(s->sk);
	e->protocol = sock_protocol(s->sk);
	e->bound_dev_if = sock_bound_dev_if(s->sk);
	e->opts = sock_bind_opts(s->sk);
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	sock_local_addr(s->sk, e->family, e->addr);
	return sizeof(*e);
}

SYSCALL_EXIT(bind)
