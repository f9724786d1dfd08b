"""snoop, live: one workload that execs, opens, signals and exits, traced by
several tools in one process; its events in the order they happened, field
by field."""
import os
import re

from helpers import PYTHON_COMM, Tracer, held_child, release

# the held shell execs a shell that opens FILE (at fd 3: dash's redirection
# takes the lowest free fd, and the child has 0-2 only), ignores and sends
# itself SIGUSR1, fails to open MISSING (a builtin that is not special, so
# the shell goes on) and exits with 7; the sleeps (children, traced by no
# --pid) put the events in several of the tracer's reads
SCRIPT = "trap '' USR1; exec 3< %s; sleep 0.2; kill -USR1 $$; sleep 0.2; true < %s; exit 7"


def run(tmp_path, *snoop_args, json_mode=True, env=None):
    path, missing = tmp_path / "file", tmp_path / "missing"
    path.write_text("x")
    script = SCRIPT % (path, missing)
    child = held_child("/bin/sh -c %s" % shlex_quote(script))
    with Tracer("snoop", "--pid", str(child.pid), *snoop_args, json_mode=json_mode,
                env=env) as t:
        code, _, _ = release(child)
    assert code == 7
    return t, child, script, str(path), str(missing)


def shlex_quote(text):
    import shlex
    return shlex.quote(text)


def test_one_stream_in_the_order_events_happened(tmp_path):
    t, child, script, path, missing = run(tmp_path, "exec,open,exit,kill")
    pid, argv = child.pid, ["/bin/sh", "-c", script]
    assert t.returncode == 0
    # the shell's own opens (its loader's, before the script runs) aside
    events = [e for e in t.events if e["event"] != "open" or e["path"] in (path, missing)]
    assert [e["event"] for e in events] == ["exec", "open", "kill", "open", "exit"]
    exec_, opened, kill, failed, exit_ = events
    for e in events:
        assert (e["pid"], e["tid"], e["uid"], e["comm"]) == (pid, pid, os.getuid(), "sh")
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert exec_["filename"] == "/bin/sh" and exec_["args"] == argv
    assert (exec_["ret"], exec_["ppid"], exec_["pcomm"]) == (0, os.getpid(), PYTHON_COMM)
    assert (opened["path"], opened["fd"], opened["err"], opened["call"]) == (path, 3, 0, "openat")
    assert (kill["call"], kill["sig"], kill["tpid"], kill["ret"]) == ("kill", 10, pid, 0)
    assert (failed["path"], failed["fd"], failed["err"]) == (missing, -1, 2)
    assert (exit_["exit_code"], exit_["sig"], exit_["exit"], exit_["ppid"]) == \
        (7, 0, "code 7", os.getpid())
    # the joined context: the exit says what ran
    assert exit_["args"] == argv
    # each object is its tool's own, with "event" first
    assert list(opened)[:2] == ["event", "ts"]
    assert {"flags", "mode", "cgroup_id"} <= set(opened)


def test_text_lines_and_each_tools_own_options(tmp_path):
    # open: -x, only failed opens (in the kernel); exit: --label
    t, child, script, path, missing = run(tmp_path, "open,exit", "exec", "--summary", "open:",
                                          "-x", "exit:--label", json_mode=False)
    # three header lines, three events, then the summary
    lines, summary = t.stdout.splitlines()[:6], "\n".join(t.stdout.splitlines()[6:])
    # --summary: each tool's tables under its name, in the tools' order
    assert re.findall(r"^(\w+): (\d+) events, 0 lost$", summary, re.M) == \
        [("open", "1"), ("exit", "1"), ("exec", "1")]
    assert [line.split()[0] for line in lines[:3]] == ["OPEN", "EXIT", "EXEC"]
    assert lines[0].split() == ["OPEN", "PID", "COMM", "FD", "ERR", "PATH"]
    assert lines[1].split() == ["EXIT", "LABEL", "PCOMM", "PID", "PPID", "TID", "AGE(s)",
                                "EXIT_CODE", "ARGS"]
    events = lines[3:]
    assert [line.split()[0] for line in events] == ["exec", "open", "exit"]
    assert events[1].split() == ["open", str(child.pid), "sh", "-1", "2", missing]
    assert re.fullmatch(r"exit +exit +sh +%d +%d +%d +[0-9.]+ +code 7 /bin/sh -c trap .*exit 7"
                        % (child.pid, os.getpid(), child.pid), events[2])


def test_all_and_a_tool_that_cannot_start(tmp_path):
    # a variant no tool has: the tools with variants (opensnoop, dcsnoop,
    # syncsnoop, threadsnoop) cannot start, nor compactsnoop where the
    # kernel does not give it what it reads (5.10); all goes on without
    # them, and says so
    from snooptools import kernel
    env = {"SNOOPTOOLS_VARIANT": "none"}
    t, child, script, _, _ = run(tmp_path, "all", env=env)
    left = re.findall(r"^snoop: (\w+) left out: ", t.stderr, re.M)
    compacts = kernel.raw_tracepoint_args("mm_compaction_begin")[:1] == \
        ("struct compact_control *",)
    assert left == ["compactsnoop"] * (not compacts) + [
        "dcsnoop", "opensnoop", "syncsnoop", "threadsnoop"]
    tracing = re.search(r"^Tracing (.*)\.\.\. Ctrl-C", t.stderr, re.M).group(1).split(", ")
    assert not {"open", "dc", "sync", "thread", "tty"} & set(tracing)
    assert ("compact" in tracing) == compacts
    assert {"exec", "exit", "kill", "fork", "stat"} <= set(tracing)
    mine = " ".join(e["event"] for e in t.events if e["pid"] == child.pid)
    # the dynamic loader's fstat()s come between the exec and the script,
    # whose sleeps are forks
    assert re.fullmatch(r"exec( stat)+ fork kill fork exit", mine), mine


def test_a_named_tool_that_cannot_start_ends_snoop(tmp_path):
    from helpers import command_env, run_tool
    p = run_tool("snoop", "exec,open", "--pid", "1", "--duration", "1",
                 env=dict(command_env("snoop"), SNOOPTOOLS_VARIANT="none"))
    assert p.returncode == 1
    assert p.stderr == "snoop: opensnoop: no variant 'none': opensnoop has exit, pair\n"


def test_no_perf_buffer():
    """A perf buffer per CPU cannot give one order: refused, in one line."""
    from helpers import run_tool
    p = run_tool("snoop", "exec", "--pid", "1", env=dict(os.environ, SNOOPTOOLS_BUFFER="perf"))
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == ("snoop: no BPF ring buffer: one ring keeps every tool's events in "
                        "order; a perf buffer is one per CPU (run the tools one at a time)\n")


def test_the_cut_down_btf_relocates_every_object_as_the_kernels_does():
    """Each tool loads its object against the kernel's BTF cut down to what
    its CO-RE relocations read, snoop its objects against one cut for all
    (corebtf.py): every program of every object (those this kernel can
    load) comes out of libbpf's relocation with the very instructions it
    has against the kernel's whole BTF, either way."""
    import ctypes
    from helpers import ROOT, fentry_allowed
    from snooptools import corebtf, kernel, libbpf, transport
    from snooptools.bpfobject import BPFObject
    from snooptools.startup import use_kernel_features
    lib = libbpf.load()
    lib.bpf_program__insns.restype = ctypes.c_void_p
    lib.bpf_program__insns.argtypes = [libbpf.Program]
    lib.bpf_program__insn_cnt.restype = ctypes.c_size_t
    lib.bpf_program__insn_cnt.argtypes = [libbpf.Program]
    kernel.tracefs()
    paths = sorted(str(p) for p in (ROOT / "build" / "bpf").glob("*.bpf.o"))
    core = corebtf.File(corebtf.make(paths))

    find_vma = kernel.tracing_helper(kernel.BPF_FUNC_FIND_VMA)

    def relocated(path, btf):
        with BPFObject(path, btf) as obj:
            names = [prog for prog, _, _ in obj.programs()]
            for prog, section, _ in obj.programs():
                probe = kernel.section_probe(section)
                if probe is not None and not probe[1] or \
                        section.startswith(("fentry", "fexit")) and not fentry_allowed():
                    obj.set_autoload(prog, False)
                elif prog.endswith("_rbtree") or prog + "_rbtree" in names:
                    # of the VMA lookup's variants, this kernel's (fs.bpf.h)
                    obj.set_autoload(prog, prog.endswith("_rbtree") != bool(find_vma))
            transport.choose(obj)
            use_kernel_features(obj)        # a map type some kernels lack, shrunk
            obj.load()
            return {name: ctypes.string_at(lib.bpf_program__insns(p),
                                           8 * lib.bpf_program__insn_cnt(p))
                    for name, _, p in obj.programs() if lib.bpf_program__autoload(p)}
    try:
        assert core.size < 64 << 10
        for path in paths:
            # (made first: a map's fd, in the instructions, is the same
            # number in all three loads only if the same fds are open)
            own = corebtf.File(corebtf.make([path]))
            try:
                whole = relocated(path, None)
                assert whole and relocated(path, core.path) == whole, path
                assert relocated(path, own.path) == whole, path
            finally:
                own.close()
    finally:
        core.close()
