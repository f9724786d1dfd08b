"""The kallsyms symbolizer on synthetic kallsyms text, and compactsnoop's
-K output from a synthetic event."""
from helpers import Collect

from snooptools.ksyms import KernelSymbols
from snooptools.output import TextWriter
from test_layout import layout, tool_module
from test_layout import record as tool_record

# unsorted, as module symbols are; aliases; data and absolute symbols
KALLSYMS = """\
ffffffff81200000 T compact_zone
ffffffff81000000 T _stext
ffffffff81000000 t _text_alias
ffffffff81100000 t local_first
ffffffff81100000 T global_second
ffffffff81180000 D some_data
ffffffff81300000 W weak_func
0000000000000000 A fixed_percpu_data
ffffffffc0a01000 t mod_func\t[somemod]
ffffffffc0b00000 t bpf_prog_0123456789abcdef_compaction_end\t[bpf]
ffffffff81400000 T bpf_trace_run5
"""


def symbols(tmp_path, text=KALLSYMS, notes=None):
    path = tmp_path / "kallsyms"
    path.write_text(text)
    return KernelSymbols(str(path), warn=None if notes is None else notes.append)


def test_names_with_offsets_as_bcc_shows_them(tmp_path):
    k = symbols(tmp_path)
    assert k.name(0xffffffff81200000) == "compact_zone+0x0"
    assert k.name(0xffffffff81200aca) == "compact_zone+0xaca"
    assert k.name(0xffffffff81000010) == "_stext+0x10"         # the global of two aliases
    assert k.name(0xffffffff81100004) == "global_second+0x4"    # the global, listed second
    assert k.name(0xffffffff81180008) == "global_second+0x80008"   # data symbols are no code
    assert k.name(0xffffffff81300001) == "weak_func+0x1"
    assert k.name(0xffffffffc0a01010) == "mod_func+0x10"        # no [module] in the name
    assert k.name(0xffffffff80000000) == "[unknown]"            # below every symbol
    assert k.unreadable is None


def test_read_once_and_only_when_used(tmp_path):
    k = symbols(tmp_path)
    (tmp_path / "kallsyms").write_text("ffffffff81000000 T replaced\n")
    assert k.name(0xffffffff81000001) == "replaced+0x1"         # nothing read before use
    (tmp_path / "kallsyms").unlink()
    assert k.name(0xffffffff81200000) == "replaced+0x200000"    # nor after


def test_stack_starts_outside_the_tracing_machinery(tmp_path):
    k = symbols(tmp_path)
    addrs = [0xffffffffc0b00446, 0xffffffff81400112, 0xffffffff81200aca, 0xffffffff81400000,
             0xffffffff81000100]
    assert k.stack(addrs) == ["compact_zone+0xaca", "bpf_trace_run5+0x0", "_stext+0x100"]
    assert k.stack([]) == []


def test_zero_addresses_give_hex_and_one_note(tmp_path):
    notes = []
    text = "".join("0000000000000000 %s\n" % line.split(" ", 1)[1]
                   for line in KALLSYMS.splitlines())
    k = symbols(tmp_path, text, notes)
    assert k.stack([0xffffffff81200aca, 0xffffffff81000100]) == ["0xffffffff81200aca",
                                                                  "0xffffffff81000100"]
    assert k.name(0xffffffff81300001) == "0xffffffff81300001"
    assert notes == ["kernel stacks are shown as addresses: %s shows every address as 0 "
                     "(kernel.kptr_restrict)" % (tmp_path / "kallsyms")]
    assert "kptr_restrict" in k.unreadable


def test_unreadable_file_gives_hex_and_one_note(tmp_path):
    notes = []
    k = KernelSymbols(str(tmp_path / "missing"), warn=notes.append)
    assert [k.name(0x10), k.name(0x20)] == ["0x10", "0x20"]
    assert notes == ["kernel stacks are shown as addresses: cannot read %s (No such file or "
                     "directory)" % (tmp_path / "missing")]


def compactsnoop(argv, tmp_path, stacks):
    mod = tool_module("compactsnoop")
    t = mod.CompactSnoop()
    args, _ = t.parse(argv)

    class Obj:          # the stack map, as BPFObject.stack reads it
        def stack(self, name, stack_id):
            assert name == "stacks"
            return stacks.get(stack_id, [])

    t.obj, t.ksyms = Obj(), symbols(tmp_path)       # what configure() and after_load() set
    return t, args


def test_compactsnoop_kernel_stack_text_and_json(tmp_path):
    t, args = compactsnoop(["-K"], tmp_path, {7: [0xffffffffc0b00446, 0xffffffff81200aca,
                                                  0xffffffff81000100]})
    lay = layout("compactsnoop")
    rec = tool_record(t, lay, pid=5, comm=b"sh", node=0, zone=b"Normal", order=-1, sync=1,
                      lat_ns=1500000, status=5, stack_id=7)
    assert rec["stack"] == ["compact_zone+0xaca", "_stext+0x100"]
    lost = tool_record(t, lay, pid=5, comm=b"sh", zone=b"DMA", status=5, stack_id=-17)
    assert lost["stack"] == []
    out = Collect()
    w = TextWriter(t.columns(args), out)
    w.write(rec)
    w.write(lost)
    w.flush()
    # BCC's layout: the run's line, its frames after a tab, an empty line
    assert out.getvalue() == (
        "sh             5      0    Normal       -1    SYNC        1.500         complete\n"
        "\tcompact_zone+0xaca\n\t_stext+0x100\n\n"
        "sh             5      0    DMA          0     ASYNC       0.000         complete\n"
        "\t[Missed Kernel Stack]\n\n")


def test_compactsnoop_without_k_has_no_stack(tmp_path):
    t, args = compactsnoop([], tmp_path, {})
    rec = tool_record(t, layout("compactsnoop"), pid=5, comm=b"sh", zone=b"DMA", stack_id=-1)
    assert "stack" not in rec
    assert [c.header for c in t.columns(args)][-1] == "STATUS"
