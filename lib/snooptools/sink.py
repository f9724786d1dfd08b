"""stdout as the tools write it: every event's text is written whole or
counted as not written, never cut, and a stop never waits on a stalled
reader for longer than STOP_WAIT_SECONDS.

Python's own stdout layers are not used for events. A signal that
interrupts a large buffered write part-way leaves the rest of the buffer to
them, and a stop while the reader is stalled would either cut a line or
wait for ever. Here, on a pipe (or a tty, or a socket), every write is a
whole number of lines of at most PIPE_BUF bytes, made on a non-blocking
descriptor of its own: the kernel takes all of it or none (POSIX's atomic
pipe write), and the wait for room is a poll() that looks at the stop
request at least every WAIT_SECONDS. Files and /dev/null take big writes.
"""
import errno
import os
import select
import stat
import time

PIPE_BUF = select.PIPE_BUF
STOP_WAIT_SECONDS = 5.0     # how long a stopping tool waits for a stalled reader
WAIT_SECONDS = 0.1          # how often a wait for the reader looks at the stop request
BIG_WRITE = 1 << 20          # bytes per write to a file


class WriteError(Exception):
    """stdout failed for a reason other than a closed reader (ENOSPC, EIO)."""

    def __init__(self, err):
        super().__init__(os.strerror(err))
        self.errno = err


class Sink:
    """Writes the text of events to fd, joined in batches. stop() tells it
    the tool is stopping: from then on it waits for a stalled reader until
    STOP_WAIT_SECONDS have passed, or until stop() is called again (a second
    Ctrl-C), and counts the events it could not write in .unwritten."""

    def __init__(self, fd=1, encoding="utf-8", errors="backslashreplace"):
        self.fd = fd
        self.encoding, self.errors = encoding, errors
        self.unwritten = 0
        self.stop_at = None         # a monotonic time to stop at (--duration)
        self._stops = 0
        self._give_up_at = None
        self._sock = None
        mode = os.fstat(fd).st_mode
        # Pipes, ttys and sockets can stall: whole lines, PIPE_BUF at a time,
        # never blocking. Anything else (a file, /dev/null) cannot.
        self.stalls = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)
        self._out = fd
        if stat.S_ISSOCK(mode):
            import socket
            self._sock = socket.socket(fileno=os.dup(fd))
            self._send_flags = socket.MSG_DONTWAIT
        elif self.stalls:
            try:
                # a description of our own: O_NONBLOCK on fd's would be
                # shared with the shell and everything else writing there
                self._out = os.open("/proc/self/fd/%d" % fd,
                                    os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            except OSError:
                pass                # then poll() says when a PIPE_BUF write fits
        self._poll = select.poll()
        self._poll.register(self._out if self._sock is None else self._sock, select.POLLOUT)

    @property
    def give_up_at(self):
        """When a stopping tool stops waiting for the reader (monotonic)."""
        return self._give_up_at

    def stop(self):
        """The tool is stopping (the first call), or must stop now (another)."""
        self._stops += 1
        if self._give_up_at is None:
            self._give_up_at = time.monotonic() + STOP_WAIT_SECONDS

    def write(self, data, entries=(), sep=0):
        """Write data (str or bytes), the join of entries (one event's text
        each, each followed by sep more bytes), whole; count the entries it
        could not write. Raises BrokenPipeError when the reader has gone,
        WriteError for other failures."""
        if type(data) is str:
            data = data.encode(self.encoding, self.errors)
        done = self._write_all(data)
        if done < len(data) and entries:
            self.unwritten += self._entries_after(entries, sep, len(data) - done)

    def _write_all(self, data):
        """How many bytes of data were written (all, unless given up)."""
        end = len(data)
        pos = 0
        if not self.stalls:
            while pos < end:
                try:
                    pos += os.write(self.fd, data[pos:pos + BIG_WRITE])
                except BlockingIOError:     # someone made fd non-blocking
                    if not self._wait():
                        break
                except OSError as e:
                    self._fail(e)
            return pos
        while pos < end:
            chunk = end if end - pos <= PIPE_BUF else data.rfind(b"\n", pos, pos + PIPE_BUF) + 1
            if chunk <= pos:
                # a line longer than PIPE_BUF cannot be written at once: it
                # is begun only when the pipe has room for all of it
                chunk = data.find(b"\n", pos) + 1 or end
                while not self._room_for(chunk - pos):
                    if not self._wait(poll=False):
                        return pos
            try:
                if self._sock is not None:
                    n = self._sock.send(data[pos:chunk], self._send_flags)
                else:
                    n = os.write(self._out, data[pos:chunk])
            except BlockingIOError:
                n = 0
            except OSError as e:
                self._fail(e)
            pos += n
            if n == 0 and not self._wait():
                break
        return pos

    def _wait(self, poll=True):
        """Wait for the reader to make room (poll: until stdout is writable;
        else a while); False when it is time to give up."""
        while True:
            now = time.monotonic()
            if self._give_up_at is None and self.stop_at is not None and now >= self.stop_at:
                self.stop()
            timeout = WAIT_SECONDS
            if self._give_up_at is not None:
                left = self._give_up_at - now
                if left <= 0 or self._stops > 1:
                    return False
                timeout = min(left, timeout)
            if not poll:
                time.sleep(timeout / 10)
                return True
            if self._poll.poll(timeout * 1000):
                return True

    def _room_for(self, size):
        """Whether a pipe has room for size bytes at once: its capacity, less
        what is unread, less a page the reader may be part-way through."""
        import fcntl
        import termios
        try:
            capacity = fcntl.fcntl(self._out, F_GETPIPE_SZ)
            unread = int.from_bytes(fcntl.ioctl(self._out, termios.FIONREAD, bytes(4)), "little")
        except OSError:
            return True             # not a pipe
        return capacity - unread - 4096 >= size

    def _entries_after(self, entries, sep, left):
        """How many of entries are not whole in the last left bytes."""
        n = 0
        for e in reversed(entries):
            if left <= 0:
                break
            left -= sep + len(e.encode(self.encoding, self.errors) if type(e) is str else e)
            n += 1
        return n

    @staticmethod
    def _fail(e):
        if e.errno == errno.EPIPE:
            raise BrokenPipeError(e.errno, e.strerror) from None
        raise WriteError(e.errno) from None

    def close(self):
        if self._sock is not None:
            self._sock.close()
        elif self._out != self.fd:
            os.close(self._out)
        self._out = self.fd


F_GETPIPE_SZ = 1032
