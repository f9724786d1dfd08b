"""The code made at start for each tool's events: named, listed in
tracebacks with its own lines, printed on request; and the JSON writer's
fallback where CPython's C encoder is not to be had."""
import json
import re
import subprocess
import sys
import traceback

from helpers import ROOT, Collect
from snooptools import codegen, output
from snooptools.output import Column, JsonWriter, TextWriter


def test_a_failure_in_made_code_shows_its_own_line():
    def broken(value):
        return value + 1            # a str: TypeError

    w = TextWriter([Column("PID", "pid", 5), Column("N", "n", 3, broken)], Collect())
    try:
        w.write({"pid": 1, "n": "x"})
    except TypeError as e:
        frames = traceback.extract_tb(e.__traceback__)
    made = [f for f in frames if f.filename.startswith("/snooptools: line of PID N #")]
    assert len(made) == 1 and made[0].line == "v1 = f1(rec['n'])"


def test_show_code_prints_what_is_made():
    r = subprocess.run([sys.executable, "-c", "from snooptools import codegen\n"
                        "f = codegen.function('f', 'def f(x):\\n    return x * 2\\n', {}, 'a test')\n"
                        "print(f(21))"],
                       env={"SNOOPTOOLS_SHOW_CODE": "1", "PYTHONPATH": str(ROOT / "lib")},
                       capture_output=True, text=True, check=True)
    assert r.stdout == "42\n"
    assert re.fullmatch(r"# /snooptools: a test #\d+\ndef f\(x\):\n    return x \* 2\n\n",
                        r.stderr)


def test_names_are_unique():
    a = codegen.function("f", "def f():\n    return 1\n", {}, "same")
    b = codegen.function("f", "def f():\n    return 2\n", {}, "same")
    assert a.__code__.co_filename != b.__code__.co_filename


RECORDS = [{"ts": 1.5, "pid": 7, "comm": "caf\u00e9", "args": ["a", "b"], "ok": True,
            "none": None, "f": 0.1},
           {"ts": 2.25, "pid": 8, "comm": "x\ny", "args": [], "ok": False, "none": None,
            "f": 1e-7}]


def lines():
    out = Collect()
    w = JsonWriter(out)
    for rec in RECORDS:
        w.write(dict(rec))
    w.write({"other": "shape", "n": 1})     # the generic encoder's way
    w.flush()
    return out.getvalue()


def test_json_without_cpython_c_encoder_is_the_same(monkeypatch):
    with_c = lines()
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert output._json_encoder().__self__.__class__ is json.JSONEncoder     # the fallback
    assert lines() == with_c
    assert [json.loads(line) for line in with_c.splitlines()][:2] == [
        dict(r, ts=r["ts"]) for r in RECORDS]
