// SPDX-License-Identifier: GPL-2.0
/*
 * bindsnoop: one event per bind() of an IPv4 or IPv6 socket. Entry applies
 * the filters and finds the socket behind the descriptor (sockets of other
 * families, and descriptors that are no socket, stop there). Exit applies -E,
 * --failed and -P, reads what the bind made of the socket (protocol, local
 * address and port, bound device, the options that shaped the bind) and
 * copies the caller's sockaddr, which the kernel has just read and so is
 * resident.
 */
#include "sock.bpf.h"

#define SOCKADDR_LEN	28	/* sizeof(struct sockaddr_in6), the largest inet one */
#define SA_BUF		32	/* room for it, a power of two */

const volatile bool include_failed = false;	/* -E */
const volatile bool failed_only = false;	/* --failed */
const volatile bool filter_ports = false;	/* -P: consult port_filter */

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
SNOOP_EVENT(struct event);

SEC("tracepoint/syscalls/sys_enter_bind")
int bind_enter(struct syscall_enter *ctx)
{
	struct start s = { .uaddr = ctx->args[1], .addrlen = ctx->args[2], .fd = ctx->args[0] };
	u16 family;
	u32 tid;

	if (!should_trace())
		return 0;
	s.sk = fd_sock((void *)bpf_get_current_task(), s.fd);
	if (!s.sk)
		return 0;
	family = sock_family(s.sk);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	tid = (u32)bpf_get_current_pid_tgid();
	start_save(tid, &s);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_bind")
int bind_exit(struct syscall_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct start *s = saved_start(tid);
	struct event e = {};
	u32 n;

	if (!s)
		return 0;
	if (ctx->ret < 0 ? !include_failed : failed_only)
		goto out;
	n = s->addrlen < 0 ? 0 : s->addrlen;
	if (n > SOCKADDR_LEN)
		n = SOCKADDR_LEN;
	if (n && !bpf_probe_read_user(e.sa, BOUND(n, SA_BUF - 1), (void *)s->uaddr))
		e.sa_len = n;
	if (!ctx->ret)
		e.port = sock_local_port(s->sk);
	else if (e.sa_len >= 4)		/* sin_port and sin6_port: bytes 2-3, big-endian */
		e.port = e.sa[2] << 8 | e.sa[3];
	if (filter_ports && !bpf_map_lookup_elem(&port_filter, &e.port))
		goto out;
	fill_task(&e.task);
	e.ret = ctx->ret;
	e.fd = s->fd;
	e.family = sock_family(s->sk);
	e.protocol = sock_protocol(s->sk);
	e.bound_dev_if = sock_bound_dev_if(s->sk);
	e.opts = sock_bind_opts(s->sk);
	sock_local_addr(s->sk, e.family, e.addr);
	emit(ctx, &e, sizeof(e));
out:
	start_done(tid, s);
	return 0;
}
