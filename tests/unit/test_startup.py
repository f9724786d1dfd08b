"""Start-up without root: when an object refused against the cut-down BTF
is tried again against the kernel's own."""
import errno

import pytest

from snooptools import SnoopError, startup


class Core:
    path = "/run/snooptools/cut.btf"


def tries(monkeypatch, failure):
    """The BTF each start_cut() try relocated against (None: the kernel's)."""
    seen = []

    def start(tool, args, ring=None, tag=0, core_btf=None):
        seen.append(core_btf)
        raise failure
    monkeypatch.setattr(startup, "start", start)
    with pytest.raises(SnoopError) as raised:
        startup.start_cut(object(), None, Core())
    assert raised.value is failure
    return seen


def refusal(btf_matters):
    e = SnoopError("cannot trace on this kernel", "fentry: refused by the kernel")
    e.btf_matters = btf_matters
    return e


def test_a_refusal_the_btf_cannot_change_is_not_tried_again(monkeypatch):
    assert tries(monkeypatch, refusal(False)) == [Core.path]


def test_a_failure_the_btf_may_cause_is_tried_against_the_kernels(monkeypatch):
    assert tries(monkeypatch, refusal(True)) == [Core.path, None]
    # any other error of a start (a tool's own check, say) is tried again too
    assert tries(monkeypatch, SnoopError("no such thing")) == [Core.path, None]


def test_which_errors_the_btf_may_cause(monkeypatch):
    """start() marks its failure: only EPERM (a kind of program refused) and
    refusals of its own (no kprobes, no helper) leave the BTF out."""
    from snooptools import libbpf

    class Tool:
        name = "dcsnoop"
        variants = (("fentry", ("a",)), ("kprobe", ("b",)))
        no_variant_hint = ""

    class Obj:
        def __init__(self, path, core_btf=None):
            pass

        def close(self):
            pass

    def refuse(code):
        def select_programs(tool, obj):
            if tool.variant == "fentry":
                raise libbpf.LibbpfError("bpf_object__load", code)
            raise startup.Refused("not built into this kernel")
        return select_programs
    monkeypatch.setattr(startup, "BPFObject", Obj)
    monkeypatch.setattr(startup, "object_path", lambda name: name)
    monkeypatch.delenv("SNOOPTOOLS_VARIANT", raising=False)
    for code, matters in ((errno.EPERM, False), (errno.EINVAL, True), (errno.ESRCH, True)):
        monkeypatch.setattr(startup, "select_programs", refuse(code))
        with pytest.raises(SnoopError) as raised:
            startup.start(Tool(), None)
        assert raised.value.btf_matters is matters, code
