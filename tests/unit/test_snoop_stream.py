"""snoop without root: its command line (the tools, each tool's own options
after TOOL:), its text and JSON lines, the exec/exit join, and the records
of several tools dispatched by their heads' tool_id."""
import json
import sys

import pytest

from helpers import ROOT, Collect

from snooptools import UsageError, loop, output
from snooptools.btf import Layout
from snooptools.snoop import Joiner, Snoop, Summary, chosen, split_sections, tool_names

TOOLS_DIR = str(ROOT / "tools")
NAMES = tool_names(TOOLS_DIR)


def parsed(*argv):
    s = Snoop()
    s.tool_dir = TOOLS_DIR
    args, _ = s.parse(list(argv))
    return s, args


def members(s):
    return {m.short: m.tool.args for m in s.members}


def test_short_names_are_the_tools_without_snoop():
    assert NAMES["exec"] == "execsnoop" and NAMES["dc"] == "dcsnoop"
    assert "snoop" not in NAMES.values() and len(NAMES) == 17


def test_sections_each_tools_own_options():
    own, sections = split_sections(
        ["exec,open", "--pid", "42", "open:", "-x", "-F", "exec:-x", "-l", "a:b",
         "killsnoop:", "-s", "9,TERM"], NAMES)
    assert own == ["exec,open", "--pid", "42"]
    assert sections == {"open": ["-x", "-F"], "exec": ["-x", "-l", "a:b"],
                        "kill": ["-s", "9,TERM"]}


def test_a_word_with_a_colon_that_is_no_section():
    own, sections = split_sections(["exec", "--cgroup", "/sys/fs/cgroup/a:b", "nope:", "x:-y"],
                                   NAMES)
    assert own == ["exec", "--cgroup", "/sys/fs/cgroup/a:b", "nope:", "x:-y"]
    assert sections == {}


def test_tools_named_with_commas_spaces_full_names_and_sections():
    assert chosen(["exec,open", "exitsnoop"], NAMES, {"kill": []}) == \
        ["exec", "open", "exit", "kill"]
    assert chosen(["open,all"], NAMES, {})[:3] == ["open", "bind", "bio"]
    assert len(chosen(["all"], NAMES, {})) == 17
    with pytest.raises(UsageError, match="unknown tool 'nope': one of bind, bio"):
        chosen(["exec,nope"], NAMES, {})
    with pytest.raises(UsageError, match="no tool named"):
        chosen([], NAMES, {})


def test_each_tool_gets_the_common_options_and_its_own():
    s, args = parsed("exec,open", "--pid", "42", "--json", "open:", "-x", "-F", "exec:-x")
    got = members(s)
    assert list(got) == ["exec", "open"]
    assert got["open"].pid == [42] and got["exec"].pid == [42]
    assert got["open"].json and got["exec"].json
    assert (got["open"].failed, got["open"].full_path) == (True, True)
    assert got["exec"].fails and not hasattr(got["exec"], "full_path")
    assert [m.tag for m in s.members] == [1, 2]


def test_all_leaves_out_a_tool_that_needs_an_argument():
    s, _ = parsed("all")
    assert "tty" not in members(s) and len(s.members) == 16


def run_snoop(*argv):
    import subprocess
    return subprocess.run([sys.executable, str(ROOT / "tools" / "snoop"), *argv],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("argv, line", [
    (["nope"], "snoop: unknown tool 'nope': one of bind, bio, compact, dc, dr, exec, exit, "
               "fork, kill, mount, open, shm, sofd, stat, sync, thread, tty, or all"),
    ([], "snoop: no tool named: give TOOL[,TOOL...] (bind, bio, compact, dc, dr, exec, exit, "
         "fork, kill, mount, open, shm, sofd, stat, sync, thread, tty) or all"),
    (["open", "open:", "-p", "3"], "snoop: open: unrecognized arguments: -p 3"),
    (["tty"], "snoop: tty: the following arguments are required: device"),
    (["bind:", "--count"], "snoop: bind: a table at the end has no place in a stream: "
                           "run bindsnoop alone for it"),
    (["exec", "--pid", "x"], "snoop: argument --pid: invalid id 'x': expected a number"),
])
def test_bad_command_lines_are_one_line_and_status_2(argv, line):
    p = run_snoop(*argv)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", line + "\n")


# -- lines ---------------------------------------------------------------------------
def stream(*argv):
    """A parsed snoop and its writer, on a Collect sink."""
    s, args = parsed(*argv)
    sink = Collect()
    s.open_stdout = lambda encoding=None: setattr(s, "stdout", sink) or sink
    clock = output.Clock()
    for m in s.members:
        m.tool.clock = clock
    if {"exec", "exit"} <= set(members(s)):
        s.joiner = Joiner()
    return s, s.writer(args), sink


EXEC = {"event": "exec", "ts": 1.5, "pid": 7, "tid": 7, "uid": 0, "comm": "sh", "ppid": 1,
        "pcomm": "init", "filename": "/bin/sh", "args": ["/bin/sh", "-c", "exit 3"],
        "args_truncated": False, "ret": 0, "err": 0, "cpu": 0}
EXIT = {"event": "exit", "ts": 2.0, "pid": 7, "tid": 7, "uid": 0, "comm": "sh", "ppid": 1,
        "age": 0.5, "exit_code": 3, "sig": 0, "core": False, "exit": "code 3"}


def test_text_a_header_line_per_tool_then_lines_in_order():
    s, out, sink = stream("exec,exit")
    out.header()
    [w_exec, w_exit] = out.writers
    exit_ = dict(EXIT)
    s.joiner.exec_seen(EXEC)
    s.joiner.exit_seen(exit_)
    w_exec.write(EXEC)
    w_exit.write(exit_)
    w_exit.write(dict(EXIT, pid=8, tid=8))       # no exec seen: no ARGS
    out.flush()
    assert sink.getvalue() == (
        "EXEC  COMM             PID     PPID    RET ARGS\n"
        "EXIT  PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE ARGS\n"
        "exec  sh               7       1         0 /bin/sh -c exit 3\n"
        "exit  sh               7       1       7       0.50    code 3 /bin/sh -c exit 3\n"
        "exit  sh               8       1       8       0.50    code 3\n")


@pytest.mark.parametrize("json_mode", [False, True])
def test_every_tools_lines_at_every_flush(json_mode):
    """The writers share their pending lines: a flush (after each drain)
    writes every tool's, not only those of the writer it is called on."""
    s, out, sink = stream("exec,exit", *(["--json"] if json_mode else []))
    out.header()
    w_exec, w_exit = out.writers
    for pid in (1, 2, 3):
        w_exit.write(dict(EXIT, pid=pid))
        w_exec.write(dict(EXEC, pid=pid))
        out.flush()
    events = sink.getvalue().splitlines()[0 if json_mode else 2:]
    if json_mode:
        events = ["%s %d" % (e["event"], e["pid"]) for e in map(json.loads, events)]
    else:
        events = ["%s %s" % tuple(line.split()[:3:2]) for line in events]
    assert events == ["exit 1", "exec 1", "exit 2", "exec 2", "exit 3", "exec 3"]


def test_json_each_tools_object_with_its_event():
    s, out, sink = stream("exec,exit", "--json")
    exit_ = dict(EXIT)
    s.joiner.exec_seen(EXEC)
    s.joiner.exit_seen(exit_)
    out.writers[1].write(exit_)
    out.writers[0].write(EXEC)
    out.flush()
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert lines == [dict(EXIT, args=["/bin/sh", "-c", "exit 3"]), EXEC]
    assert list(lines[0])[0] == "event"


def test_the_join_is_per_process_and_bounded(monkeypatch):
    monkeypatch.setattr("snooptools.snoop.JOIN_MAX", 2)
    j = Joiner()
    for pid in (1, 2, 3):
        j.exec_seen(dict(EXEC, pid=pid, args=["p%d" % pid]))
    assert list(j.args) == [2, 3]           # the oldest went first
    ended = dict(EXIT, pid=3)
    j.exit_seen(ended)
    assert ended["args"] == ["p3"] and list(j.args) == [2]
    threads = Joiner(per_thread=True)
    threads.exec_seen(dict(EXEC, pid=5, args=["p5"]))
    thread_exit = dict(EXIT, pid=5, tid=6)
    threads.exit_seen(thread_exit)
    assert thread_exit["args"] == ["p5"] and 5 in threads.args


# -- records of several tools in one ring ---------------------------------------------
HEAD = Layout(["ts_ns", "pid", "tid", "uid", "comm", "tool_id"], "=QIII16sI", {}, 40)


class Probe:
    """A tool whose records are its head alone."""

    def __init__(self, name):
        self.name, self.args, self.clock = name, None, output.Clock()

    def record(self, rec):
        return rec

    def record_fields(self, layout):
        return []


def test_decoder_puts_the_event_first():
    got = []
    handle = loop.decoder(Probe("x"), HEAD, got.append, "exec")
    data = HEAD.struct.pack(10**9, 7, 8, 0, b"sh", 1)
    handle(data, 0, len(data))
    assert list(got[0]) == ["event", "ts", "pid", "tid", "uid", "comm"]
    assert got[0]["event"] == "exec" and got[0]["pid"] == 7


def test_records_go_to_the_decoder_their_tool_id_names(monkeypatch):
    s, _ = parsed("exec,open")
    got = []

    class Obj:
        def __init__(self, name):
            self.name = name

    monkeypatch.setattr("snooptools.snoop.tool_id_offset", lambda obj: 36)
    for m in s.members:
        m.obj, m.layout = Obj(m.short), HEAD
        m.tool = Probe(m.short)

    class Out:
        writers = [type("W", (), {"write": staticmethod(got.append)})()] * 2
    handle = s.dispatcher(Out)
    ring = b"".join(HEAD.struct.pack(i, i, i, 0, b"c", tag) for i, tag in
                    enumerate([2, 1, 1, 2]))
    for start in range(0, len(ring), HEAD.struct.size):
        handle(ring, start, start + HEAD.struct.size)
    assert [(r["event"], r["pid"]) for r in got] == [("open", 0), ("exec", 1), ("exec", 2),
                                                     ("open", 3)]


def test_summary_says_what_the_whole_stream_lost_then_each_tool():
    s, _ = parsed("exec,open", "--summary")
    for m in s.members:
        m.summary = output.Summary(m.tool.summary_key, m.tool.summary_header)
    s.members[1].summary.add({"pid": 7, "comm": "cat", "path": "/etc/passwd", "fd": 3,
                              "err": 0})
    text = Summary(s.members).render({"exec": 0, "open": 2}, unwritten=0, unexported=4)
    assert text.startswith("4 events not exported\n\nexec: 0 events, 0 lost\n")
    assert "\nopen: 1 events, 2 lost\n" in text
    assert "not exported" not in Summary(s.members).render({}, 0, None, None)
