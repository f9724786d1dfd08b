"""The Tool base class: everything a snoop tool does except what makes it
that tool. A driver declares its object, options, columns and how one event
becomes one record; Tool.main() does the rest:

    parse -> check the host -> open -> configure -> load -> fill maps
          -> attach -> "Tracing ..." -> poll/print until stopped -> close

Errors cross one boundary here: SnoopError becomes one line and exit 1,
usage errors exit 2, a write error on stdout one line and exit 1; Ctrl-C,
SIGTERM, SIGHUP, --duration and a closed stdout exit 0, having written every
event read or said how many could not be (sink.py).
"""
import argparse
import errno
import functools
import os
import signal
import sys
import time

from . import filters, kernel, libbpf, output, sink, transport
from .bpfobject import BPFObject, object_path
from .errors import SnoopError, UsageError
from .output import kstr

POLL_SECONDS = 0.05     # longest an event waits in the buffer before it is shown
LOST_CHECK_SECONDS = 1.0


class Refused(Exception):
    """This kernel cannot run a variant of the tool."""

    def __init__(self, why):
        super().__init__(why)
        self.why = why


class Stop(BaseException):
    """SIGTERM or SIGHUP before tracing: end the way Ctrl-C does."""


def _on_stop_signal(_sig, _frame):
    raise Stop()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Tool:
    # -- what a driver declares ----------------------------------------------
    name = None                  # the tool, its object and its man page
    description = ""             # one line, for --help and the man page NAME
    tracing = "Tracing... Ctrl-C to end."
    examples = ""                # the examples block of --help and the man page
    # the tool's BCC short letters for the common flags (None: long flag only)
    short_pid = short_tid = short_uid = short_comm = None
    short_time = short_timestamp = short_duration = None
    uid_help = None
    filter_maps = False          # offer BCC's --cgroupmap and --mntnsmap
    optional_programs = ()       # programs whose tracepoint some kernels lack
    # program name -> more "category/event" tracepoints it also serves (each
    # attached where this kernel has it). One program verified once instead
    # of one copy per syscall: start-up time grows with programs verified.
    also_attach = {}
    time_width, timestamp_width, timestamp_decimals = -9, -8, 3
    summary_key = summary_header = None
    exec_option = False          # offer --exec CMD: run CMD and trace only it
    # Fields beyond BCC's columns are shown in text only when asked for:
    # extended, the help of -e/--extended (None: the tool has none), which
    # sets args.extended; extended_aliases, BCC's own spellings of it.
    extended = None
    short_extended = "-e"
    extended_aliases = ()
    # ((variant, program names only it uses), ...), best first, for events
    # no tracepoint carries: each is tried until the kernel accepts one
    # (self.variant names it); the other variants' programs are not loaded.
    variants = ()
    variant = None          # the one being tried, then the one running
    no_variant_hint = ""
    ring_bytes = transport.DEFAULT_RING_BYTES
    perf_pages = transport.DEFAULT_PERF_PAGES

    def __init__(self):
        self.stopping = []      # the stop signals received while tracing
        self.stdout = None      # sink.Sink of the events' text, once tracing

    def add_arguments(self, parser):
        """Add the tool's own options."""

    def validate(self, args, parser):
        """Check option combinations; call parser.error() to refuse."""

    def configure(self, obj, args):
        """Write the tool's .rodata knobs (before load)."""

    def after_load(self, obj, args):
        """Fill the tool's own maps (after load, before attach)."""

    def attach(self, obj, args):
        obj.attach()
        for name, tracepoints in self.also_attach.items():
            for tp in tracepoints:
                if kernel.tracepoint_exists(*tp.split("/", 1)):
                    obj.attach_tracepoint(name, tp)

    def columns(self, args):
        raise NotImplementedError

    def deferred(self, args):
        """True when nothing is shown per event, only at finish(): no header
        at the start."""
        return False

    def finish(self, args, out):
        """After the last event: write what the tool kept back (a table of
        counts) through out, the writer of its columns."""

    text_rows = None
    # text_rows(rec): the records of rec's text lines, when one event is
    # several lines in text mode (and one object in JSON)

    def record(self, rec):
        """Add the tool's keys to rec (which has ts, pid, tid, uid, comm) from
        the event's fields, which a driver asks for by naming them as this
        method's parameters after rec (a trailing _ keeps a field named like
        a builtin from hiding it: bytes_ is the field bytes). Return rec, or
        None to drop the event."""
        return rec

    def record_fields(self, layout):
        """The event fields record() asks for, in the order it takes them."""
        code = self.record.__code__
        known = set(layout.names + [layout.tail])
        fields = []
        for param in code.co_varnames[2:code.co_argcount]:
            field = param if param in known or not param.endswith("_") else param[:-1]
            if field not in known:
                raise SnoopError("%s: record() asks for %r, which its struct event lacks"
                                 % (self.name, param), "rebuild the BPF object (make)")
            fields.append(field)
        return fields

    # -- the machinery --------------------------------------------------------
    def parser(self):
        p = argparse.ArgumentParser(
            prog=self.name, description=self.description,
            formatter_class=_HelpFormatter,
            epilog="examples:\n" + self.examples if self.examples else None)
        self.add_arguments(p)
        if self.exec_option:
            p.add_argument("--exec", nargs=argparse.REMAINDER, metavar="CMD",
                           help="run CMD (with its arguments) and trace only it; "
                                "stop when it exits")
        filters.add_arguments(p, self.short_pid, self.short_tid, self.short_uid,
                              self.short_comm, self.uid_help, self.filter_maps)
        g = p.add_argument_group("output and run time")
        g.add_argument(*_flags(self.short_time, "--time"), action="store_true",
                       help="include a HH:MM:SS wall-clock column")
        g.add_argument(*_flags(self.short_timestamp, "--timestamp"), action="store_true",
                       help="include a column of seconds since tracing started")
        self.add_extended(g)
        g.add_argument("--json", action="store_true",
                       help="one JSON object per event per line, no header")
        g.add_argument("--summary", action="store_true",
                       help="print a table of event counts at exit")
        g.add_argument(*_flags(self.short_duration, "--duration"), type=_seconds,
                       metavar="SECONDS", help="stop after this many seconds")
        g.add_argument("--buffer-mb", type=_buffer_mb, metavar="MB",
                       help="size of the kernel-to-user event buffer, in MiB (default %d): "
                            "bigger rides out longer bursts" % (self.ring_bytes >> 20))
        g.add_argument("--quiet", action="store_true", help="no status lines on stderr")
        g.add_argument("--verbose", action="store_true", help="show libbpf's log on stderr")
        return p

    def add_extended(self, group):
        """-e/--extended, for a tool with text columns beyond BCC's."""
        if self.extended:
            short = [f for f in (self.short_extended,) + self.extended_aliases
                     if f and not f.startswith("--")]
            long = [f for f in self.extended_aliases if f.startswith("--")]
            group.add_argument(*short, "--extended", *long, dest="extended",
                               action="store_true", help=self.extended)

    @classmethod
    def main(cls, argv=None):
        if sys.stdout is None:
            sys.exit(0)             # started with stdout closed: no reader, as after a pipe closes
        tool = cls()
        parser = tool.parser()
        args = parser.parse_args(argv)
        if getattr(args, "exec", None) is not None:
            if not args.exec:
                parser.error("--exec needs a command")
            if args.pid:
                parser.error("--exec and --pid cannot be used together")
        tool.validate(args, parser)
        for sig in STOP_SIGNALS[1:]:
            signal.signal(sig, _on_stop_signal)
        # started with & by a non-interactive shell, SIGINT comes ignored:
        # `kill -INT` must still end tracing the way Ctrl-C does
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            status = tool.run(args)
        except UsageError as e:
            parser.error(str(e))
        except SnoopError as e:
            _quiet_stdout()
            _say("%s: %s" % (cls.name, e))
            status = e.status
        except (KeyboardInterrupt, Stop):
            status = 0
        except BrokenPipeError:
            _quiet_stdout()
            status = 0
        except sink.WriteError as e:
            _quiet_stdout()
            # a terminal that hung up fails writes with EIO: that is the
            # SIGHUP's stop, not a failure
            hung_up = e.errno == errno.EIO and signal.SIGHUP in tool.stopping
            if not hung_up:
                _say("%s: cannot write to stdout: %s" % (cls.name, e))
            status = 0 if hung_up else 1
        sys.exit(status)

    def status(self, args, text):
        if not args.quiet:
            _say(text)

    def run(self, args):
        kernel.check_privileges()
        kernel.check_btf()
        kernel.tracefs()
        libbpf.load()
        libbpf.set_verbose(args.verbose)
        if args.buffer_mb:
            self.ring_bytes = args.buffer_mb << 20
            # the perf buffer (old kernels) is per CPU: split the same memory
            pages = max(1, (self.ring_bytes >> 12) // kernel.online_cpus())
            self.perf_pages = 1 << (pages.bit_length() - 1)     # a power of two
        self.child = None
        if getattr(args, "exec", None):
            self.child = Child(args.exec)
            args.pid = [self.child.pid]
        obj, make_transport = self.start(args)
        with obj:
            buf = make_transport()
            try:
                return self.poll(obj, buf, args)
            finally:
                buf.close()

    def start(self, args):
        """Open, configure, load and attach the object, trying each variant
        in turn: a variant the kernel refuses (at load or attach) gives way
        to the next. Returns (object, transport factory)."""
        refused = []
        variants = self.variants or ((None, ()),)
        forced = os.environ.get("SNOOPTOOLS_VARIANT")
        if self.variants and forced:        # tests prove each variant by name
            variants = [v for v in variants if v[0] == forced]
            if not variants:
                raise SnoopError("no variant %r" % forced, "%s has %s" % (
                    self.name, ", ".join(v for v, _ in self.variants)))
        for variant, programs in variants:
            self.variant = variant          # configure() and attach() may ask
            obj = BPFObject(object_path(self.name))
            try:
                self.select_programs(obj)
                for other, progs in self.variants:
                    for name in progs if other != variant else ():
                        obj.set_autoload(name, False)
                if variant == "kprobe" and not kernel.has_kprobes():
                    raise Refused("not built into this kernel")
                make_transport = transport.choose(obj, self.ring_bytes, self.perf_pages)
                use_kernel_features(obj)
                filters.apply(obj, args)
                self.configure(obj, args)
                obj.load()
                filters.fill(obj, args)
                self.after_load(obj, args)
                # "since tracing started" counts from the first attach, so no
                # event (not even the tool's own start-up) has a negative time
                self.clock = output.Clock()
                self.attach(obj, args)
            except (Refused, libbpf.LibbpfError) as e:
                obj.close()
                if variant is None:
                    raise
                why = e.why if isinstance(e, Refused) else \
                    "refused by the kernel (%s)" % os.strerror(e.errno)
                refused.append("%s: %s" % (variant, why))
                continue
            except BaseException:
                obj.close()
                raise
            return obj, make_transport
        raise SnoopError("cannot trace on this kernel", "; ".join(refused), self.no_variant_hint)

    def select_programs(self, obj):
        """Disable programs whose tracepoint this kernel lacks, if optional."""
        for name, section, _ in obj.programs():
            probe = kernel.section_probe(section)
            if probe is None or probe[1]:
                continue
            if name not in self.optional_programs:
                raise SnoopError("%s is missing on this kernel" % probe[0],
                                 "%s cannot trace without it" % self.name)
            obj.set_autoload(name, False)

    def open_stdout(self, encoding=None):
        """The sink.Sink of the events' text on stdout (in the locale's
        encoding unless told; never an error for a character it lacks)."""
        self.stdout = sink.Sink(sys.stdout.fileno(), encoding or sys.stdout.encoding or "utf-8")
        return self.stdout

    def writer(self, args):
        if args.json:
            return output.JsonWriter(self.open_stdout("utf-8"))     # JSON text is UTF-8
        cols = []
        clock = self.clock
        if args.time:
            cols.append(output.Column("TIME", "ts", self.time_width, clock.hms))
        if args.timestamp:
            start, fmt = clock.start, "%%.%df" % self.timestamp_decimals
            cols.append(output.Column("TIME(s)", "ts", self.timestamp_width,
                                      lambda ts: fmt % (ts - start)))
        return output.TextWriter(cols + self.columns(args), self.open_stdout(), self.text_rows)

    def poll(self, obj, buf, args):
        out = self.writer(args)
        summary = output.Summary(self.summary_key, self.summary_header) if args.summary else None
        emit = out.write
        if summary is not None:
            def emit(rec):
                summary.add(rec)
                out.write(rec)
        handle = self.handler(obj.layout("event"), emit)

        # From here on Ctrl-C, SIGTERM and SIGHUP end tracing between drains,
        # never inside one: an exception raised mid-drain would leave records
        # written but not released, to be read and written again. The first
        # also bounds the wait for a stalled reader of stdout; another ends
        # it at once.
        stopping, stdout = self.stopping, self.stdout

        def on_stop(sig, _frame):
            stopping.append(sig)
            stdout.stop()

        handlers = {sig: signal.signal(sig, on_stop) for sig in STOP_SIGNALS}
        try:
            return self._trace(buf, args, out, summary, handle)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            stdout.close()

    def _trace(self, buf, args, out, summary, handle):
        stopping, stdout = self.stopping, self.stdout
        self.out = out
        self.status(args, self.tracing)
        if not self.deferred(args):
            out.header()
        child = self.child
        if child:
            child.release()
        now = time.monotonic()
        deadline = now + args.duration if args.duration else None
        stdout.stop_at = deadline
        lost_at, lost_seen = now + LOST_CHECK_SECONDS, 0
        while not stopping:
            timeout = POLL_SECONDS
            if deadline is not None:
                timeout = min(timeout, deadline - now)
                if timeout <= 0:
                    break
            buf.wait(timeout)       # a signal ends it within POLL_SECONDS
            buf.drain(handle)
            out.flush()
            if child and child.exited():
                break
            now = time.monotonic()
            if now >= lost_at:
                lost_seen = self._report_lost(buf, lost_seen)
                lost_at = now + LOST_CHECK_SECONDS
        stdout.stop()               # what is left waits a bounded time for the reader
        buf.wait(0)
        buf.drain(handle)
        out.flush()
        lost_seen = self._report_lost(buf, lost_seen)
        self.finish(args, out)
        if stdout.unwritten:
            _say("%d events not written: %s" % (
                stdout.unwritten, "stdout's reader did not take them within %g s of the stop"
                % sink.STOP_WAIT_SECONDS if len(stopping) < 2 else "stopped by a second signal"))
        if summary is not None:
            text = summary.render(lost_seen, stdout.unwritten)
            if args.json:
                _say(text, end="")
            else:
                stdout.write(text)
        return 0

    def handler(self, layout, emit):
        """handle(data, start, end): the record of one event, from its bytes
        to emit(), as one function made for this tool's struct event and
        record() (Layout.function): no dict of the event's fields is made,
        and record() gets the fields it names as its arguments."""
        comms = {}      # a few names recur: decode each once

        def new_comm(raw):
            if len(comms) > 4096:
                comms.clear()
            comm = comms[raw] = kstr(raw)
            return comm

        body = ("comm = comms.get(f_comm)\n"
                "if comm is None:\n"
                "    comm = new_comm(f_comm)\n"
                "rec = record({'ts': f_ts_ns / 1e9 + offset, 'pid': f_pid, 'tid': f_tid,\n"
                "              'uid': f_uid, 'comm': comm}%s)\n"
                "if rec is not None:\n"
                "    emit(rec)\n") % "".join(", f_" + f for f in self.record_fields(layout))
        return layout.function(body, {"comms": comms, "new_comm": new_comm, "emit": emit,
                                      "record": self.record, "offset": self.clock.offset})

    @staticmethod
    def _report_lost(buf, seen):
        lost = buf.lost()
        if lost > seen:
            _say("%d events lost" % (lost - seen))
        return lost


class Child:
    """A command started before tracing, held at a pipe until every probe is
    attached, so that its whole life is traced (--exec)."""

    def __init__(self, argv):
        r, self._w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self._w)
            if os.read(r, 1) != b"x":
                os._exit(0)         # the tracer gave up before starting it
            os.close(r)
            try:
                os.execvp(argv[0], argv)
            except OSError as e:
                sys.stderr.write("%s: %s\n" % (argv[0], e.strerror))
            os._exit(127)
        os.close(r)
        self._status = None

    def release(self):
        os.write(self._w, b"x")
        os.close(self._w)
        self._w = None

    def exited(self):
        if self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._status = status
        return self._status is not None

    def __del__(self):
        if getattr(self, "_w", None) is not None:
            os.close(self._w)


def use_kernel_features(obj):
    """Turn on what this kernel lets the programs do faster (snoop.bpf.h):
    read current's task_struct directly, and keep what an entry saw for its
    exit (SNOOP_STARTS) in task-local storage rather than a hash by thread
    id (the unused map shrinks to one slot)."""
    obj.set_rodata(task_btf=kernel.tracing_helper(kernel.BPF_FUNC_GET_CURRENT_TASK_BTF))
    if not obj.has_map("starts_task"):
        return
    task = kernel.prefer("SNOOPTOOLS_STARTS", "task", "hash",
                         lambda: kernel.tracing_helper(kernel.BPF_FUNC_TASK_STORAGE_GET),
                         "task-local storage for tracing programs")
    obj.set_rodata(use_task_storage=task)
    obj.stub_map("starts" if task else "starts_task")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse makes a formatter for every option added, and the stock one
    asks shutil for the terminal's width each time (importing shutil alone
    is ~1.5 ms of start-up): ask the terminal once, as shutil would."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        super().__init__(prog, indent_increment, max_help_position, width or _help_width())


@functools.cache
def _help_width():
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


def _flags(short, long):
    return (short, long) if short else (long,)


def _seconds(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("invalid duration %r: expected seconds" % text) from None
    if not v > 0:
        raise argparse.ArgumentTypeError("invalid duration %r: must be positive" % text)
    return v


def millis(text):
    """The argument type of --min-ms: milliseconds, 0 or more."""
    try:
        v = float(text)
    except ValueError:
        v = -1
    if not v >= 0:
        raise argparse.ArgumentTypeError("invalid latency %r: milliseconds, 0 or more" % text)
    return v


def _buffer_mb(text):
    if not text.isdigit() or not 1 <= int(text) <= 1024 or int(text) & (int(text) - 1):
        raise argparse.ArgumentTypeError("invalid size %r: a power of two from 1 to 1024 MiB"
                                         % text)
    return int(text)


def _say(text, end="\n"):
    """A line on stderr, for the user: a closed or failing stderr is no
    reason to fail (the events went to stdout)."""
    try:
        sys.stderr.write(text + end)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _quiet_stdout():
    """After stdout closed early, keep Python's exit-time flush quiet."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except OSError:
        pass
