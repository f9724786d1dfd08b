"""What this kernel made each tool choose, as the tool itself says it
(SNOOPTOOLS_SHOW_CHOICES=1: one stderr line from Tool.start()), against what
the kernel offers, asked here feature by feature: which program kinds are
attached, the variant of the tools that have one, the events an optional program
was left out for, where an entry keeps what its exit reports, how current's
task is read and which buffer carries the events. A tool that cannot run
here says so in one line, asserted too.

With SNOOPTOOLS_CHOICES_REPORT=FILE, the lines seen are written to FILE
(the VM legs and `make kernels` do: scripts/kernels makes the README's table
of kernels from them)."""
import os
import platform

import pytest

from helpers import ROOT, TOOLS, Tracer, fentry_allowed, run_tool
from snooptools import kernel
from snooptools.bpfobject import BPFObject

# The kinds of program each tool attaches with its default options (dcsnoop's
# is its variant, below)
KINDS = {
    "bindsnoop": "tracepoint", "biosnoop": "raw tracepoint", "compactsnoop": "raw tracepoint",
    "drsnoop": "tracepoint", "execsnoop": "tracepoint+raw tracepoint", "exitsnoop": "tracepoint",
    "forksnoop": "tracepoint",
    "killsnoop": "tracepoint", "mountsnoop": "tracepoint", "opensnoop": "tracepoint",
    "shmsnoop": "tracepoint", "sofdsnoop": "tracepoint", "statsnoop": "tracepoint",
    "syncsnoop": "tracepoint", "threadsnoop": "uprobe", "ttysnoop": "tracepoint",
}
DCSNOOP_HINT = "(no tracepoint covers dcache lookups; dcsnoop needs fentry or kprobes)"


def helper(func_id):
    return kernel.tracing_helper(func_id)


def missing_events(tool):
    """The tracepoints of the tool's programs that this kernel lacks, in the
    object's order (each was an optional program's)."""
    missing = []
    with BPFObject(str(ROOT / "build" / "bpf" / (tool + ".bpf.o"))) as obj:
        for _, section, _ in obj.programs():
            probe = kernel.section_probe(section)
            event = section.rpartition("/")[2]
            if probe is not None and not probe[1] and event not in missing:
                missing.append(event)
        starts = obj.has_map("starts_task")
    return missing, starts


def refusal(tool):
    """What the tool says where it cannot run here, else None."""
    if tool == "dcsnoop" and not fentry_allowed() and not kernel.has_kprobes():
        return ("dcsnoop: cannot trace on this kernel: fentry: refused by the kernel "
                "(Operation not permitted); kprobe: not built into this kernel %s\n"
                % DCSNOOP_HINT)
    if tool == "compactsnoop" and kernel.raw_tracepoint_args("mm_compaction_begin")[:1] != \
            ("struct compact_control *",):
        return ("compactsnoop: tracepoint mm_compaction_begin passes no struct compact_control "
                "on this kernel: compactsnoop reads each run's zone, node and order from it\n")
    return None


def expected(tool):
    """The line the tool should say here, where it can run."""
    if tool == "dcsnoop":
        kinds = "fentry" if fentry_allowed() else "kprobe"
    else:
        kinds = KINDS[tool]
    task_btf = helper(kernel.BPF_FUNC_GET_CURRENT_TASK_BTF)
    parts = [kinds]
    if tool == "opensnoop":
        exit_only = (platform.machine() == "x86_64" and task_btf
                     and helper(kernel.BPF_FUNC_TASK_PT_REGS))
        parts.append("variant " + ("exit" if exit_only else "pair"))
    if tool in ("syncsnoop", "threadsnoop"):
        parts.append("variant " + ("find_vma" if helper(kernel.BPF_FUNC_FIND_VMA) else "rbtree"))
    missing, starts = missing_events(tool)
    if missing:
        parts.append("without " + " ".join(missing))
    if starts:
        task = task_btf and helper(kernel.BPF_FUNC_TASK_STORAGE_GET)
        parts.append("starts " + ("task" if task else "hash"))
    parts.append("current " + ("btf" if task_btf else "helpers"))
    forced = os.environ.get("SNOOPTOOLS_BUFFER")
    parts.append("buffer " + (forced or ("ring" if kernel.has_ringbuf() else "perf")))
    return "%s: %s" % (tool, ", ".join(parts))


@pytest.fixture(scope="module")
def report():
    seen = {}
    yield seen
    path = os.environ.get("SNOOPTOOLS_CHOICES_REPORT")
    if path:
        forced = ["%s=%s" % kv for kv in sorted(os.environ.items())
                  if kv[0] in ("SNOOPTOOLS_BUFFER", "SNOOPTOOLS_STARTS", "SNOOPTOOLS_VARIANT")]
        with open(path, "w") as f:
            f.write("kernel %s\n" % platform.release())
            for line in forced:
                f.write("forced %s\n" % line)
            for tool in sorted(seen):
                f.write(seen[tool] + "\n")


SHOW = {"SNOOPTOOLS_SHOW_CHOICES": "1"}


@pytest.mark.parametrize("tool", TOOLS)
def test_each_tool_says_what_this_kernel_made_it_choose(tool, report):
    refused = refusal(tool)
    if refused:
        r = run_tool(tool, env=dict(os.environ, **SHOW))
        report[tool] = r.stderr.strip()
        assert (r.returncode, r.stdout, r.stderr) == (1, "", refused)
        return
    want = expected(tool)
    args = []
    if tool == "ttysnoop":
        master, slave = os.openpty()
        args = [os.ttyname(slave)]
    try:
        with Tracer(tool, *args, env=SHOW) as t:
            pass
    finally:
        if tool == "ttysnoop":
            os.close(master)
            os.close(slave)
    said = [line.rstrip("\n") for line in t.stderr_lines if line.startswith(tool + ": ")]
    report[tool] = said[0] if said else "(said nothing)"
    assert said == [want]
    assert t.returncode == 0
