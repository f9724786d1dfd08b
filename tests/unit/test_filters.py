"""The common filters' knobs, as filters.apply() writes them."""
import argparse

from snooptools import filters


class Knobs:
    def __init__(self):
        self.rodata = {}

    def set_rodata(self, **kw):
        self.rodata.update(kw)


def applied(argv):
    p = argparse.ArgumentParser()
    filters.add_arguments(p)
    filters.add_name(p)
    obj = Knobs()
    filters.apply(obj, p.parse_args(argv))
    return obj.rodata


def test_name_is_matched_in_the_kernel_as_bytes():
    assert applied([]) == {}
    assert applied(["-n", "caf\u00e9"]) == {"filter_name": "caf\u00e9".encode(), "filter_name_len": 5}
    # 16 bytes or more: in no comm (which holds 15); the kernel compares 16
    assert applied(["--name", "x" * 20]) == {"filter_name": b"x" * 16, "filter_name_len": 16}
