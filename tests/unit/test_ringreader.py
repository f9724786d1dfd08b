"""The ring buffer reader, on memory laid out as the kernel lays it out; the
perf buffer reader's order across CPUs."""
import ctypes
import struct

from snooptools import transport
from snooptools.transport import BUSY_BIT, DISCARD_BIT, RingReader

PAGE, SIZE = 64, 256      # a small "page" and data area keep the test readable


class Ring:
    def __init__(self):
        self.consumer = bytearray(PAGE)
        self.producer = bytearray(PAGE + SIZE)          # data mapped once
        self.prod = 0

    def put(self, payload, flags=0):
        off = self.prod % SIZE
        rec = struct.pack("=II", len(payload) | flags, 0) + payload
        for i, b in enumerate(rec):
            self.producer[PAGE + (off + i) % SIZE] = b
        self.prod += (len(payload) + 8 + 7) & ~7
        struct.pack_into("=Q", self.producer, 0, self.prod)

    def set_header(self, at, word):
        struct.pack_into("=I", self.producer, PAGE + at % SIZE, word)

    @property
    def cons(self):
        return struct.unpack_from("=Q", self.consumer)[0]


def drain(ring):
    got = []
    n = RingReader(ring.consumer, ring.producer, SIZE, PAGE).drain(
        lambda data, start, end: got.append(bytes(data[start:end])))
    assert n == len(got)
    return got


def test_records_in_order_and_consumer_advanced():
    ring = Ring()
    ring.put(b"one")
    ring.put(b"second-record")
    assert drain(ring) == [b"one", b"second-record"]
    assert ring.cons == ring.prod == 16 + 24
    assert drain(ring) == []


def test_discarded_records_are_skipped():
    ring = Ring()
    ring.put(b"drop", DISCARD_BIT)
    ring.put(b"keep")
    assert drain(ring) == [b"keep"]
    assert ring.cons == ring.prod


def test_busy_record_stops_the_drain_until_committed():
    ring = Ring()
    ring.put(b"a")
    busy_at = ring.prod
    ring.put(b"bbbb")
    ring.set_header(busy_at, 4 | BUSY_BIT)
    ring.put(b"c")
    assert drain(ring) == [b"a"]
    assert ring.cons == busy_at
    ring.set_header(busy_at, 4)
    assert drain(ring) == [b"bbbb", b"c"]


def test_record_wrapping_the_end_is_joined():
    ring = Ring()
    for _ in range(7):
        ring.put(b"x" * 24)            # 32 bytes each: 224 of 256
    drain(ring)
    payload = bytes(range(40))
    ring.put(payload)                  # starts at 224, wraps past 256
    ring.put(b"after")
    assert drain(ring) == [payload, b"after"]
    assert ring.cons == ring.prod


def test_record_whose_body_starts_at_the_wrap():
    ring = Ring()
    for _ in range(7):
        ring.put(b"x" * 24)
    ring.put(b"y" * 16)                # 224..248: the next header sits at 248
    drain(ring)
    ring.put(b"body at the start")     # body from 256, i.e. 0
    assert drain(ring) == [b"body at the start"]


def test_space_is_given_back_during_a_long_drain(monkeypatch):
    """The writer gets room as records are read, not only when the drain
    ends: a full ring takes a while to read, and meanwhile it keeps writing."""
    monkeypatch.setattr(transport, "RELEASE_EVERY", 2)
    ring = Ring()
    for i in range(5):
        ring.put(b"%d" % i)            # 16 bytes each
    seen = []
    RingReader(ring.consumer, ring.producer, SIZE, PAGE).drain(lambda *_: seen.append(ring.cons))
    assert seen == [0, 0, 32, 32, 64]
    assert ring.cons == ring.prod == 80


def perf_reader():
    """A perf buffer's reader without a perf buffer: records come in
    through its sample callback, as libbpf calls it, CPU by CPU."""
    pb = transport.PerfBuffer.__new__(transport.PerfBuffer)
    pb._records, pb._cpu, pb._error = [], None, None
    return pb


def sample(pb, cpu, ts, tag):
    rec = ctypes.create_string_buffer(struct.pack("<Q", ts) + tag, 9)
    pb._on_sample(None, cpu, ctypes.addressof(rec), 9)


def perf_drain(pb):
    got = []
    assert pb.drain(lambda data, start, end: got.append(bytes(data[start:end])[8:])) == len(got)
    return got


def test_perf_records_of_several_cpus_are_merged_by_time():
    pb = perf_reader()
    for cpu, ts, tag in [(1, 20, b"c"), (1, 40, b"e"), (0, 10, b"a"), (0, 20, b"d"), (0, 30, b"b")]:
        sample(pb, cpu, ts, tag)
    # one time on two CPUs: the order they were read in
    assert perf_drain(pb) == [b"a", b"c", b"d", b"b", b"e"]
    assert perf_drain(pb) == []


def test_perf_records_of_one_cpu_keep_their_order():
    # (a record's time is not always when it was written: drsnoop's is its start)
    pb = perf_reader()
    for ts, tag in [(30, b"x"), (10, b"y"), (20, b"z")]:
        sample(pb, 3, ts, tag)
    assert perf_drain(pb) == [b"x", b"y", b"z"]
    sample(pb, 3, 50, b"p")
    sample(pb, 2, 40, b"q")
    assert perf_drain(pb) == [b"q", b"p"]
