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
