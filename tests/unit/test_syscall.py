"""The syscall tools' shared half (snooptools/syscall.py): their calls come
from their objects' enum call, and what the kit's knobs are made of."""
import pytest

from snooptools.syscall import err
from test_bcc_headers import tool_class


def test_calls_are_the_objects_enum_in_order():
    tool = tool_class("statsnoop")()
    assert tool.calls[:3] == ["stat", "lstat", "fstat"] and "statx" in tool.calls
    assert tool.call_values["lstat"] == 1
    # optional_calls = "all": any call's entry may be missing, the exit's not
    assert set(tool.optional_programs) == {c + "_enter" for c in tool.calls}


@pytest.mark.parametrize("ret, errno", [(0, 0), (3, 3 * 0), (-2, 2), (-4095, 4095),
                                        (-4096, 0), (0x7f0000000000, 0)])
def test_err(ret, errno):
    assert err(ret) == errno


def test_a_call_name_for_several_calls():
    """syncsnoop --call sync_file_range means that call under every ABI's
    name; its help and errors list the names a user would use."""
    tool = tool_class("syncsnoop")()
    v = tool.call_values
    assert tool.call_names() == ["sync", "syncfs", "fsync", "fdatasync", "msync", "sync_file_range"]
    assert tool.calls_mask(["sync_file_range", "fsync"]) == (
        1 << v["sync_file_range"] | 1 << v["sync_file_range2"] | 1 << v["arm_sync_file_range"]
        | 1 << v["fsync"])
    args = tool.parser().parse_args(["-c", "fsync", "--call", "fsync"])
    knobs = {}
    tool.configure(type("Obj", (), {"set_rodata": lambda self, **kw: knobs.update(kw)})(), args)
    assert knobs == {"calls_mask": 1 << v["fsync"]}


def test_an_unknown_call_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        tool_class("syncsnoop")().parser().parse_args(["-c", "fsck"])
    assert e.value.code == 2
    assert "invalid call 'fsck': one of sync, syncfs" in capsys.readouterr().err
