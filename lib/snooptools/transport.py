"""Events from the kernel: a BPF ring buffer, or a perf buffer where the
kernel has no ring buffer (or SNOOPTOOLS_BUFFER=perf forces one). Both give
the same API: wait(timeout), then drain(handle), which calls
handle(data, start, end) per record; lost() counts every event the kernel
side could not deliver (both count failed writes in the BPF program's
lost_events map).

The ring buffer is read straight from its memory map, not through libbpf's
callbacks: one Python call per record, no ctypes transition. Its data pages
are mapped once (the kernel offers them twice over, so that a record at the
end runs on contiguously: the rare record that wraps is joined here instead,
and the ring costs its size in memory, not twice that). The kernel
writes records without waking us until a quarter of the ring is full
(BPF_RB_NO_WAKEUP below that watermark), and wait() returns on that wakeup
or after a short timeout, so events are batched yet never wait long.
"""
import ctypes
import mmap
import os
import select
import struct

from . import kernel, libbpf
from .errors import SnoopError

BUSY_BIT, DISCARD_BIT = 1 << 31, 1 << 30
LENGTH_MASK = DISCARD_BIT - 1
RELEASE_EVERY = 64       # records; a power of two
HDR_SIZE = 8
DEFAULT_RING_BYTES = 8 << 20
DEFAULT_PERF_PAGES = 64


def choose(obj, ring_bytes=DEFAULT_RING_BYTES, perf_pages=DEFAULT_PERF_PAGES, ring=None):
    """Configure obj (before load) for the transport this kernel supports,
    or to send its events into ring, a SharedRing (snoop: several objects'
    events in one ring buffer, in the order they were written).

    Returns a factory to call after load."""
    if ring is not None:
        obj.reuse_map("events", ring.fd)
        obj.set_rodata(use_ringbuf=True, wakeup_bytes=ring.size // 4)
        return None
    if use_ring():
        ring_bytes = ring_size(ring_bytes)
        obj.resize("events", ring_bytes)
        obj.set_rodata(use_ringbuf=True, wakeup_bytes=ring_bytes // 4)
        return lambda: RingBuffer(obj.map_fd("events"), ring_bytes,
                                  lambda: obj.percpu_sum("lost_events"))
    # the ring map still exists in the object: make it a harmless one-slot array
    obj.stub_map("events")
    obj.set_rodata(use_ringbuf=False)
    return lambda: PerfBuffer(obj, perf_pages)


def use_ring():
    """Whether events go through a ring buffer (else a perf buffer)."""
    return kernel.prefer("SNOOPTOOLS_BUFFER", "ring", "perf", kernel.has_ringbuf,
                         "BPF ring buffer")


class SharedRing:
    """A ring buffer map made before any object is loaded, for several
    objects to write into (choose(ring=...)): its fd, its size."""

    def __init__(self, nbytes):
        self.size = ring_size(nbytes)
        self.fd = libbpf.call("bpf_map_create", kernel.BPF_MAP_TYPE_RINGBUF, b"events", 0, 0,
                              self.size, None, what="creating the ring buffer")

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def ring_size(nbytes):
    """The ring size the kernel accepts: a power of two, at least a page."""
    size = mmap.PAGESIZE
    while size < nbytes:
        size <<= 1
    return size


class RingReader:
    """Consumes BPF ring buffer records from its two memory maps.

    consumer holds consumer_pos (we write it); producer holds producer_pos
    followed by the data pages, once. Positions are read and written as
    whole 64-bit words (a torn write makes the kernel see a bogus position).
    A record's 8-byte header never wraps (records are 8-byte aligned); its
    body may, and is then joined from the end and the start of the data.
    """

    def __init__(self, consumer, producer, size, page=mmap.PAGESIZE):
        self._cons = memoryview(consumer).cast("Q")
        self._prod = memoryview(producer)[:8].cast("Q")
        self._data = memoryview(producer)[page:page + size]
        self._hdr = self._data.cast("I")
        self._size = size

    def drain(self, handle):
        """Call handle(data, start, end) for each committed record, which is
        data[start:end]: data is the ring's memory (or, for a record that
        wrapped, bytes joined from its two parts), valid only during the
        call; no slice is made per record. Returns the count. Space is given
        back to the kernel every RELEASE_EVERY records, not once per drain:
        a drain of a full ring takes a while, and the writer must not find
        the ring full of records already read."""
        consumer, data, hdr, size = self._cons, self._data, self._hdr, self._size
        mask, busy, flags = size - 1, BUSY_BIT, BUSY_BIT | DISCARD_BIT
        every, length_mask, hdr_size, pad = RELEASE_EVERY - 1, LENGTH_MASK, HDR_SIZE, HDR_SIZE + 7
        cons = consumer[0]
        n = 0
        while True:
            prod = self._prod[0]
            if cons >= prod:
                return n
            while cons < prod:
                off = cons & mask
                head = hdr[off >> 2]
                if not head & flags:        # committed: head is the length
                    start = off + hdr_size
                    end = start + head
                    if end <= size:
                        handle(data, start, end)
                    else:
                        handle(bytes(data[start:]) + bytes(data[:end - size]), 0, head)
                    n += 1
                    if not n & every:
                        consumer[0] = cons + ((head + pad) & ~7)
                elif head & busy:           # reserved, not yet committed
                    consumer[0] = cons
                    return n
                cons += ((head & length_mask) + pad) & ~7
            consumer[0] = cons

    def release(self):
        for view in (self._hdr, self._data, self._prod, self._cons):
            view.release()


class RingBuffer:
    """The reader of the ring buffer map fd, of size bytes; lost() counts
    the events its writers could not put in it."""

    kind = "ring buffer"

    def __init__(self, fd, size, lost):
        self.lost = lost
        page = mmap.PAGESIZE
        try:
            self._cmap = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            self._pmap = mmap.mmap(fd, page + size, mmap.MAP_SHARED, mmap.PROT_READ,
                                   offset=page)
        except OSError as e:
            raise SnoopError("mapping the ring buffer", e.strerror) from None
        self._reader = RingReader(self._cmap, self._pmap, size, page)
        self._ep = select.epoll()
        self._ep.register(fd, select.EPOLLIN)

    def wait(self, timeout):
        """Sleep until the kernel wakes us or timeout seconds pass."""
        try:
            self._ep.poll(timeout)
        except InterruptedError:
            pass

    def drain(self, handle):
        return self._reader.drain(handle)

    def close(self):
        if self._ep is None:
            return
        self._ep.close()
        self._ep = None
        self._reader.release()
        self._cmap.close()
        self._pmap.close()


# every record begins with its task_head, and that with ts_ns
_TIME = struct.Struct("<Q").unpack_from


class PerfBuffer:
    """The reader of a perf buffer: one buffer per CPU. Records read
    together from several CPUs are handed on in the order of their time
    (task_head.ts_ns); libbpf gives them buffer by buffer."""

    kind = "perf buffer"

    def __init__(self, obj, pages):
        self._obj = obj
        self._lib = libbpf.load()
        self._records = []
        self._cpu = None            # the last record's; -1 once records mix CPUs
        self._lost = 0
        self._error = None
        # the callbacks must stay alive as long as the perf buffer
        self._sample_cb = libbpf.SAMPLE_FN(self._on_sample)
        self._lost_cb = libbpf.LOST_FN(self._on_lost)
        self._pb = libbpf.call("perf_buffer__new", obj.map_fd("perf_events"), pages,
                               self._sample_cb, self._lost_cb, None, None,
                               what="creating the perf buffer")

    def _on_sample(self, _ctx, cpu, data, size):
        try:
            self._records.append(ctypes.string_at(data, size))
            if cpu != self._cpu:
                self._cpu = cpu if self._cpu is None else -1
        except BaseException as e:      # never unwind through C
            self._error = e

    def _on_lost(self, _ctx, _cpu, count):
        self._lost += count

    def wait(self, timeout):
        ret = self._lib.perf_buffer__poll(self._pb, int(timeout * 1000))
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        if ret < 0 and -ret != 4:   # EINTR
            raise libbpf.LibbpfError("perf_buffer__poll", -ret, what="reading the perf buffer")

    def drain(self, handle):
        records, self._records = self._records, []
        if self._cpu == -1:
            records.sort(key=_TIME)     # stable: records of one time keep their order
        self._cpu = None
        for rec in records:
            handle(rec, 0, len(rec))
        return len(records)

    def lost(self):
        # The kernel-side count is exact; the perf records' count lags it
        # (reported only once the buffer has room again) but never exceeds it.
        return max(self._lost, self._obj.percpu_sum("lost_events"))

    def close(self):
        pb, self._pb = self._pb, None
        if pb:
            self._lib.perf_buffer__free(pb)
