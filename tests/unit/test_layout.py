"""Event layouts come from the BTF in the compiled objects; drivers decode
synthetic events the way they decode real ones."""
import importlib.machinery
import importlib.util

import pytest

from helpers import ROOT
from snooptools import SnoopError, Tool, loop
from snooptools.bpfobject import BPFObject, constants, object_path
from snooptools.btf import Layout, parse_object, short_name


def tool_module(name):
    loader = importlib.machinery.SourceFileLoader("tool_" + name, str(ROOT / "tools" / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def layout(tool):
    with BPFObject(object_path(tool)) as obj:
        return obj.layout("event")


def pack(lay, **fields):
    values = []
    zeros = lay.struct.unpack_from(bytes(lay.struct.size))
    for name in lay.names:
        n = lay.groups.get(name, 1)
        v = fields.get(name, b"" if isinstance(zeros[len(values)], bytes) else 0)
        values.extend(v if n > 1 else [v])
    return lay.struct.pack(*values) + (fields.get(lay.tail, b"") if lay.tail else b"")


def test_opensnoop_layout_matches_its_c_struct():
    lay = layout("opensnoop")
    assert lay.names[:5] == ["ts_ns", "pid", "tid", "uid", "comm"]    # struct task_head, flattened
    assert {"ret", "dfd", "flags", "mode", "call", "path_len", "full_len"} <= set(lay.names)
    assert lay.tail == "buf" and lay.struct.size == lay.tail_off < lay.size
    assert lay.struct.format.startswith("=")


def test_the_tail_is_what_was_sent_and_short_records_are_padded():
    lay = layout("opensnoop")
    rec = pack(lay, pid=7, comm=b"cat", path_len=5, buf=b"/etc\0")
    e = lay.unpack(memoryview(rec))
    assert e["pid"] == 7 and e["comm"].rstrip(b"\0") == b"cat" and e["buf"] == b"/etc\0"
    e = lay.unpack(memoryview(rec)[:20])     # cut inside the fixed part
    assert e["pid"] == 7 and e["comm"] == bytes(16) and e["buf"] == b""


def test_an_enum_field_comes_out_as_its_name():
    """drsnoop's kind is an enum reclaim_kind in C: its values reach record()
    as the enumerators' names, a value the enum lacks as its number."""
    lay = layout("drsnoop")
    assert lay.enums["kind"] == {0: "direct", 1: "memcg"}
    assert [lay.unpack(pack(lay, kind=k))["kind"] for k in (0, 1, 7)] == ["direct", "memcg", 7]
    assert lay.unpack(pack(lay, order=3))["order"] == 3     # other fields stay numbers


def test_enums_are_read_from_the_object_file_before_it_is_opened():
    types = parse_object(object_path("drsnoop"))
    assert types.enum("reclaim_kind") == {"RECLAIM_DIRECT": 0, "RECLAIM_MEMCG": 1}
    with pytest.raises(SnoopError, match="enum no_such_enum"):
        types.enum("no_such_enum")


def test_constants_are_the_enums_an_object_keeps(monkeypatch):
    """killsnoop.bpf.c keeps SNOOP_KEEP(enum { SIG_MAX = 64 }) and its enum
    kill_flag; an object that cannot be read ends the tool, saying why."""
    from snooptools import bpfobject
    assert {"SIG_MAX": 64, "KILL_PIDFD_RESOLVED": 1}.items() <= constants("killsnoop").items()
    assert "CALL_KILL" not in constants("killsnoop")      # not kept: a field's type
    assert constants("ttysnoop")["DATA_MAX"] == 8192        # an enum without a name
    monkeypatch.setenv("SNOOPTOOLS_BPF_DIR", "/nonexistent")
    monkeypatch.setattr(bpfobject, "OBJECT_DIRS", [])
    with pytest.raises(SystemExit, match="^nosuchsnoop: BPF object nosuchsnoop.bpf.o not found"):
        constants("nosuchsnoop")
    with pytest.raises(SystemExit, match="no constant NOPE"):
        bpfobject.constant("killsnoop", "NOPE")


def test_short_names():
    assert [short_name(n) for n in ("CALL_OPENAT", "CALL_SYNC_FILE_RANGE", "ST_NOT_SUITABLE_ZONE",
                                    "PLAIN")] == ["openat", "sync_file_range",
                                                  "not_suitable_zone", "plain"]


def decode(tool, cls_name, argv, **fields):
    mod = tool_module(tool)
    t = getattr(mod, cls_name)()
    args, _ = t.parse(argv)
    with BPFObject(object_path(tool)) as obj:      # opened, never loaded
        t.configure(obj, args)
    return record(t, layout(tool), **fields)


def record(t, lay, **fields):
    """t's record of an event with these fields (None if it drops it), made
    the way the poll loop makes it."""
    got = []
    t.clock = _Clock()
    data = pack(lay, **fields)
    loop.decoder(t, lay, got.append)(data, 0, len(data))
    return got[0] if got else None


def test_execsnoop_record_from_synthetic_event():
    area = b"/usr/bin/ls\0ls\0-l\0caf\xff\0"
    rec = decode("execsnoop", "ExecSnoop", [], pid=5, ppid=1, pcomm=b"bash", ret=0,
                 fname_len=12, args_len=len(area) - 12, args=area)
    assert rec["args"] == ["/usr/bin/ls", "-l", "caf\udcff"]
    assert (rec["ppid"], rec["pcomm"], rec["args_truncated"]) == (1, "bash", False)


def test_execsnoop_script_drops_interpreter_and_truncates():
    # a #! script: the kernel's argv is [interpreter, script, args...]
    area = b"./run.sh\0/bin/sh\0./run.sh\0a\0b\0c\0"
    rec = decode("execsnoop", "ExecSnoop", ["--max-args", "3"], fname_len=9,
                 args_len=len(area) - 9, args=area, flags=2)
    assert rec["args"] == ["./run.sh", "a", "b"] and rec["args_truncated"] is True


def test_enum_fields_as_each_tool_shows_them():
    # dcsnoop: BCC's letters for enum lookup_type
    assert [decode("dcsnoop", "DcSnoop", [], type=t, name=b"x\0", name_len=2)["type"]
            for t in (0, 1)] == ["M", "R"]
    # compactsnoop: enum status's names; ST_UNKNOWN shows the kernel's own value
    assert decode("compactsnoop", "CompactSnoop", [], status=5)["status"] == "complete"
    assert decode("compactsnoop", "CompactSnoop", [], status=9, kstatus=42)["status"] == "42"


def test_opensnoop_record_full_path_and_errors():
    buf = b"rel\0/abs/dir/rel\0"
    rec = decode("opensnoop", "OpenSnoop", ["-F"], ret=-2, path_len=4, full_len=13, buf=buf,
                 call=1, flags=0o100, mode=0o644)
    assert (rec["path"], rec["path_as_passed"], rec["fd"], rec["err"]) == ("/abs/dir/rel", "rel", -1, 2)
    assert rec["call"] == "openat"


@pytest.mark.parametrize("argv", [["-T", "-U", "-x", "-p", "1,2", "-t", "3", "-u", "0", "-d", "5",
                                   "-n", "x", "-e", "-f", "O_WRONLY", "-F", "-b", "64"]])
def test_opensnoop_accepts_bcc_flags(argv):
    args = tool_module("opensnoop").OpenSnoop().parser().parse_args(argv)
    assert (args.timestamp, args.pid, args.tid, args.uid, args.duration) == (True, [1, 2], [3], 0, 5.0)


def test_execsnoop_accepts_bcc_flags():
    args = tool_module("execsnoop").ExecSnoop().parser().parse_args(
        ["-T", "-t", "-x", "-q", "-n", "a", "-l", "b", "-U", "-C", "-M", "-P", "1", "-u", "root",
         "--max-args", "5"])
    assert (args.time, args.timestamp, args.uid, args.ppid, args.max_args) == (True, True, 0, 1, 5)


class _Fields(Tool):
    name = "fields"

    def record(self, rec, ret, bytes_, name):
        rec.update(ret=ret, nbytes=bytes_, name=name)
        return rec


def test_record_asks_for_fields_by_its_parameter_names():
    lay = Layout(["ret", "bytes"], "=iI", {}, 8, tail="name", tail_off=8)
    assert _Fields().record_fields(lay) == ["ret", "bytes", "name"]
    other = Layout(["ret", "len"], "=iI", {}, 8)
    with pytest.raises(SnoopError, match="'bytes_'"):
        _Fields().record_fields(other)


def test_handler_reads_each_record_where_the_buffer_has_it():
    """The ring hands over its whole memory and where a record lies in it:
    fields come from there, the tail ends where the record does, and a
    record cut short inside the fixed part (here after uid) reads as zeros."""
    lay = layout("opensnoop")
    t = tool_module("opensnoop").OpenSnoop()
    t.name_filter, t.clock = None, _Clock()
    got = []
    handle = loop.decoder(t, lay, got.append)
    one = pack(lay, ts_ns=2_500_000_000, pid=7, tid=8, uid=9, comm=b"cat", ret=3, call=1,
               path_len=5, buf=b"/etc\0")
    two = pack(lay, pid=10, tid=10, comm=b"ls", ret=-13, call=0, path_len=2, buf=b"x\0")
    ring = b"junk" + one + two + b"more"
    handle(ring, 4, 4 + len(one))
    handle(ring, 4 + len(one), 4 + len(one) + len(two))
    handle(memoryview(two)[:20], 0, 20)
    assert [(r["ts"], r["pid"], r["tid"], r["uid"], r["comm"], r["call"], r["path"], r["fd"],
             r["err"]) for r in got] == [
        (102.5, 7, 8, 9, "cat", "openat", "/etc", 3, 0),
        (100.0, 10, 10, 0, "ls", "open", "x", -1, 13),
        (100.0, 10, 10, 0, "", "open", "", 0, 0)]


class _Clock:
    offset = 100.0
