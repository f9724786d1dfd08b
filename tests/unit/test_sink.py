"""stdout's sink: on a pipe whose reader stalls, a stop waits a bounded time,
then counts what it could not write; what it wrote is whole lines, never a
cut one; a second stop ends the wait at once; write errors are typed."""
import errno
import os
import threading
import time

import pytest

from snooptools import sink

LINE = "%05d " + "x" * 90 + "\n"        # 97 bytes: the pipe fills mid-line


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def read_all(r):
    chunks = []
    while True:
        b = os.read(r, 1 << 16)
        if not b:
            return b"".join(chunks).decode()
        chunks.append(b)


def lines(n, start=0):
    return [LINE % i for i in range(start, start + n)]


def test_a_stalled_reader_gets_whole_lines_and_the_rest_is_counted(pipe, monkeypatch):
    monkeypatch.setattr(sink, "STOP_WAIT_SECONDS", 0.3)
    r, w = pipe
    out = sink.Sink(w)
    out.stop()                          # Ctrl-C came while the pipe was full
    entries = lines(20000)
    t0 = time.monotonic()
    out.write("".join(entries), entries)
    assert 0.25 <= time.monotonic() - t0 < 2
    out.close()
    os.close(w)
    got = read_all(r)
    assert got.endswith("\n")           # no cut line, however full the pipe was
    got = got.splitlines(keepends=True)
    assert got == entries[:len(got)]
    assert 0 < len(got) < 20000 and len(got) + out.unwritten == 20000


def test_a_second_stop_ends_the_wait_at_once(pipe, monkeypatch):
    monkeypatch.setattr(sink, "STOP_WAIT_SECONDS", 30)
    r, w = pipe
    out = sink.Sink(w)
    out.stop()
    threading.Timer(0.2, out.stop).start()
    entries = lines(5000)
    t0 = time.monotonic()
    out.write("".join(entries), entries)
    assert time.monotonic() - t0 < 5
    assert out.unwritten > 0


def test_a_reader_that_resumes_within_the_wait_gets_everything(pipe, monkeypatch):
    monkeypatch.setattr(sink, "STOP_WAIT_SECONDS", 10)
    r, w = pipe
    out = sink.Sink(w)
    got = []
    reader = threading.Timer(0.5, lambda: got.append(read_all(r)))
    reader.start()
    out.stop()
    entries = lines(20000)
    out.write("".join(entries), entries)
    out.close()
    os.close(w)
    reader.join()
    assert got[0] == "".join(entries) and out.unwritten == 0


def test_json_lines_counted_with_their_separator(pipe, monkeypatch):
    monkeypatch.setattr(sink, "STOP_WAIT_SECONDS", 0.1)
    r, w = pipe
    out = sink.Sink(w)
    out.stop()
    entries = [line[:-1] for line in lines(3000)]     # JsonWriter's: newlines joined in
    out.write("\n".join(entries) + "\n", entries, 1)
    out.close()
    os.close(w)
    got = read_all(r).splitlines()
    assert got == entries[:len(got)] and len(got) + out.unwritten == 3000


def test_a_line_longer_than_pipe_buf_is_begun_only_with_room_for_all_of_it(pipe, monkeypatch):
    monkeypatch.setattr(sink, "STOP_WAIT_SECONDS", 0.3)
    r, w = pipe
    out = sink.Sink(w)
    out.stop()
    long = "L" * (3 * sink.PIPE_BUF) + "\n"
    entries = lines(300) + [long] * 8       # 29 KB, then 12 KB lines, in a 64 KB pipe
    out.write("".join(entries), entries)
    out.close()
    os.close(w)
    got = read_all(r)
    assert got.endswith("\n")
    got = got.splitlines(keepends=True)
    assert got == entries[:len(got)] and len(got) + out.unwritten == len(entries)
    assert long in got                  # some fit whole, the rest were never begun


def test_bytes_entries_too(pipe):
    r, w = pipe
    out = sink.Sink(w)
    out.write(b"\x1b[Hraw\xff", [b"\x1b[H", b"raw\xff"])
    out.close()
    os.close(w)
    assert os.read(r, 100) == b"\x1b[Hraw\xff"


def test_text_in_an_encoding_that_lacks_a_character_is_escaped(pipe):
    r, w = pipe
    out = sink.Sink(w, "ascii")
    out.write("caf\u00e9\n")
    assert os.read(r, 100) == b"caf\\xe9\n"


def test_a_full_disk_is_a_write_error():
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(sink.WriteError) as e:
            sink.Sink(fd).write("x\n", ["x\n"])
        assert e.value.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_reader_gone_is_a_broken_pipe(pipe):
    r, w = pipe
    os.close(r)
    with pytest.raises(BrokenPipeError):
        sink.Sink(w).write("x\n", ["x\n"])
