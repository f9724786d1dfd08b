"""The Tool base class: everything a snoop tool does except what makes it
that tool. A driver declares its object, options, columns and how one event
becomes one record; Tool.main() does the rest, through

    cli.py      parse the command line (the common options once for all)
    startup.py  check the host -> open -> configure -> load -> fill maps
                -> attach, trying the tool's variants in turn
    loop.py     "Tracing ..." -> poll/print until stopped -> close

Errors cross one boundary here, in main(): SnoopError becomes one line and
exit 1, usage errors exit 2, a write error on stdout one line and exit 1;
Ctrl-C, SIGTERM, SIGHUP, --duration and a closed stdout exit 0, having
written every event read or said how many could not be (sink.py).

Every hook has the parsed command line as self.args (and as its args
argument): a driver reads its options there, not from copies of its own.
"""
import errno
import os
import signal
import sys

from . import cli, filters, kernel, libbpf, loop, output, sink, startup, transport
from .errors import SnoopError, UsageError
from .loop import Child, say


class Stop(BaseException):
    """SIGTERM or SIGHUP before tracing: end the way Ctrl-C does."""


def _on_stop_signal(_sig, _frame):
    raise Stop()


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
    # --time and --timestamp put TIME and TIME(s) before the tool's columns,
    # in these widths; own_time: the tool's columns() place a time of their
    # own instead (or always show one); a deferred table has none
    time_width, timestamp_width, timestamp_decimals = -9, -8, 3
    own_time = False
    exports = True              # --otlp and its companions (otlp.py)
    summary_key = summary_header = None
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
    perf_pages = None           # per CPU; None: the ring's memory split (prepare())

    def __init__(self):
        self.args = None        # the command line, parsed
        self.stopping = []      # the stop signals received while tracing
        self.stdout = None      # sink.Sink of the events' text, once tracing
        self.child = None       # --exec's command
        self.containers = None  # containers.Resolver, where events are told which container

    def add_arguments(self, parser):
        """Add the tool's own options."""

    def validate(self, args, parser):
        """Check option combinations; call parser.error() to refuse."""

    def configure(self, obj, args):
        """Write the tool's .rodata knobs (before load)."""

    def after_load(self, obj, args):
        """Fill the tool's own maps (after load, before attach)."""

    def attach(self, obj, args):
        """Attach the programs (and those of also_attach)."""
        startup.attach(self, obj)

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
        return cli.parser(self)

    def parse(self, argv=None):
        """(args, parser) of command line argv, checked by the parser and by
        validate(); args is self.args from then on."""
        args, parser = cli.parse(self, argv)
        self.args = args
        self.validate(args, parser)
        if args.otlp is not None and self.deferred(args):
            parser.error("--otlp sends events as they come, not a table made at exit")
        return args, parser

    @classmethod
    def main(cls, argv=None):
        if sys.stdout is None:
            sys.exit(0)             # started with stdout closed: no reader, as after a pipe closes
        tool = cls()
        args, parser = tool.parse(argv)
        for sig in loop.STOP_SIGNALS[1:]:
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
            say("%s: %s" % (cls.name, e))
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
                say("%s: cannot write to stdout: %s" % (cls.name, e))
            status = 0 if hung_up else 1
        sys.exit(status)

    def status(self, args, text):
        if not args.quiet:
            say(text)

    def run(self, args):
        self.prepare(args)
        core = startup.cut_btf([self.name])
        try:
            obj, make_transport = startup.start_cut(self, args, core)
        finally:
            if core is not None:
                core.close()
        with obj:
            buf = make_transport()
            try:
                return loop.trace(self, obj, buf, args)
            finally:
                buf.close()

    def prepare(self, args):
        """What a run does before it starts an object: check the host, load
        libbpf, size the buffer, start --exec's command (held)."""
        kernel.check_privileges()
        kernel.check_btf()
        kernel.tracefs()
        libbpf.load()
        libbpf.set_verbose(args.verbose)
        if args.buffer_mb:
            self.ring_bytes = args.buffer_mb << 20
        if self.perf_pages is None:
            # the perf buffer (old kernels, SNOOPTOOLS_BUFFER=perf) is per
            # CPU: the ring's memory, split (64 pages, BCC's default, lost a
            # third of a burst of 330 small ttysnoop events in a slow guest)
            pages = max(1, (self.ring_bytes >> 12) // kernel.online_cpus())
            self.perf_pages = 1 << (pages.bit_length() - 1)     # a power of two
        if args.exec:
            self.child = Child(args.exec)
            args.tree = self.child.pid      # its tree, from before its exec

    def open_stdout(self, encoding=None):
        """The sink.Sink of the events' text on stdout (in the locale's
        encoding unless told; never an error for a character it lacks)."""
        self.stdout = sink.Sink(sys.stdout.fileno(), encoding or sys.stdout.encoding or "utf-8")
        return self.stdout

    def time_columns(self, args):
        """TIME and TIME(s), as --time and --timestamp ask."""
        cols, clock = [], self.clock
        if args.time:
            cols.append(output.Column("TIME", "ts", self.time_width, clock.hms))
        if args.timestamp:
            start, fmt = clock.start, "%%.%df" % self.timestamp_decimals
            cols.append(output.Column("TIME(s)", "ts", self.timestamp_width,
                                      lambda ts: fmt % (ts - start)))
        return cols

    def writer(self, args):
        if args.json:
            return output.JsonWriter(self.open_stdout("utf-8"))     # JSON text is UTF-8
        return output.TextWriter(self.text_columns(args), self.open_stdout(), self.text_rows)

    def text_columns(self, args):
        """The columns of a text line: the time's and CONTAINER, as the
        common options ask, then the tool's own."""
        cols = [] if self.own_time or self.deferred(args) else self.time_columns(args)
        if filters.container_column(args) and not self.deferred(args):
            cols.append(output.Column("CONTAINER", "cgroup_id", -16, self.container_label,
                                      live=True))
        return cols + self.columns(args)

    def container_label(self, cgroup_id):
        """--containers' column: the name (or short id) of the event's container."""
        return output.escape(self.containers.label(cgroup_id))


def _quiet_stdout():
    """After stdout closed early, keep Python's exit-time flush quiet."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except OSError:
        pass
