// SPDX-License-Identifier: GPL-2.0
/*
 * exitsnoop: one event per process exit (or, with --per-thread, per thread
 * exit), from sched:sched_process_exit. There current is the exiting task
 * and its exit code is already set; the parent, start time and the status
 * that wait() will see are read from the task with CO-RE.
 *
 * A process is reported when its last thread exits (group_dead), not when
 * its leader does: a leader that calls pthread_exit() leaves the process
 * running, and the status a parent gets from wait() is only final then.
 */
#include "snoop.bpf.h"

#define SIGNAL_GROUP_EXIT 0x00000004	/* signal->flags: exit_group() or fatal signal */

const volatile bool per_thread = false;		/* --per-thread: every thread's exit */
const volatile bool failed_only = false;	/* -x: only a non-zero status */

struct event {
	struct task_head task;
	u32 ppid;
	u32 status;		/* wait status: code << 8 | 0x80 if core dumped | signal */
	u64 age_ns;		/* since the process (thread, with --per-thread) started */
};

SNOOP_EVENT(struct event);

SEC("tracepoint/sched/sched_process_exit")
int process_exit(struct trace_event_raw_sched_process_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct task_struct *leader;
	struct event e;
	u64 start;
	u32 status;

	if (!should_trace())
		return 0;
	if (per_thread) {
		status = BPF_CORE_READ(task, exit_code);
		start = BPF_CORE_READ(task, start_time);
	} else {
		if (!group_dead(ctx, task))
			return 0;
		/* the status wait() reports for the process (wait_task_zombie()) */
		leader = BPF_CORE_READ(task, group_leader);
		if (BPF_CORE_READ(task, signal, flags) & SIGNAL_GROUP_EXIT)
			status = BPF_CORE_READ(task, signal, group_exit_code);
		else
			status = BPF_CORE_READ(leader, exit_code);
		start = BPF_CORE_READ(leader, start_time);
	}
	if (failed_only && !status)
		return 0;

	__builtin_memset(&e, 0, sizeof(e));
	fill_task(&e.task);
	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e.status = status;
	e.age_ns = e.task.ts_ns - start;	/* both CLOCK_MONOTONIC */
	emit(ctx, &e, sizeof(e));
	return 0;
}
