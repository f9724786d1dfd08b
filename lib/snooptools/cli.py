"""The command line every tool shares: the parser made from a Tool's
declarations (its own options first, then the common filters, then output
and run time), and the argument types of the common options."""
import argparse
import functools
import os
import sys

from . import filters


def parser(tool):
    p = argparse.ArgumentParser(
        prog=tool.name, description=tool.description, formatter_class=_HelpFormatter,
        epilog="examples:\n" + tool.examples if tool.examples else None)
    tool.add_arguments(p)
    filters.add_arguments(p, tool.short_pid, tool.short_tid, tool.short_uid, tool.short_comm,
                          tool.uid_help, tool.filter_maps)
    g = p.add_argument_group("output and run time")
    g.add_argument(*flags(tool.short_time, "--time"), action="store_true",
                   help="include a HH:MM:SS wall-clock column")
    g.add_argument(*flags(tool.short_timestamp, "--timestamp"), action="store_true",
                   help="include a column of seconds since tracing started")
    add_extended(g, tool)
    g.add_argument("--json", action="store_true",
                   help="one JSON object per event per line, no header")
    g.add_argument("--summary", action="store_true", help="print a table of event counts at exit")
    g.add_argument(*flags(tool.short_duration, "--duration"), type=seconds, metavar="SECONDS",
                   help="stop after this many seconds")
    g.add_argument("--buffer-mb", type=buffer_mb, metavar="MB",
                   help="size of the kernel-to-user event buffer, in MiB (default %d): "
                        "bigger rides out longer bursts" % (tool.ring_bytes >> 20))
    g.add_argument("--quiet", action="store_true", help="no status lines on stderr")
    g.add_argument("--verbose", action="store_true", help="show libbpf's log on stderr")
    if tool.exports:
        add_export_arguments(p)
    return p


def add_extended(p, tool):
    """-e/--extended (and BCC's own spellings of it), where the tool has
    text columns beyond BCC's."""
    if tool.extended:
        short = [f for f in (tool.short_extended,) + tool.extended_aliases
                 if f and not f.startswith("--")]
        long = [f for f in tool.extended_aliases if f.startswith("--")]
        p.add_argument(*short, "--extended", *long, dest="extended", action="store_true",
                       help=tool.extended)


def add_export_arguments(p):
    """--otlp and its companions."""
    g = p.add_argument_group("export to an OpenTelemetry Collector")
    g.add_argument("--otlp", nargs="?", const="", type=otlp_url, metavar="URL",
                   help="also send each event as an OTLP log record over OTLP/HTTP to "
                        "URL/v1/logs ([http[s]://]HOST[:PORT], port 4318 unless given); "
                        "without URL, where OTEL_EXPORTER_OTLP_LOGS_ENDPOINT or "
                        "OTEL_EXPORTER_OTLP_ENDPOINT say, else localhost:4318")
    g.add_argument("--otlp-only", action="store_true",
                   help="with --otlp: events go to the collector only, none to stdout")
    g.add_argument("--otlp-header", action="append", type=otlp_header, metavar="KEY=VALUE",
                   help="a header of every request, as an auth token (repeatable; over "
                        "OTEL_EXPORTER_OTLP_HEADERS)")


def otlp_url(text):
    if text == "":
        return text                 # --otlp alone: the environment says where
    from . import otlp
    try:
        return otlp.cli_url(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def otlp_header(text):
    from . import otlp
    try:
        return otlp.cli_header(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse(tool, argv):
    """args, checked as far as the command line can tell, and the parser."""
    p = tool.parser()
    args = p.parse_args(argv)
    filters.check(args, p.error)
    if getattr(args, "otlp", "") is None and (args.otlp_only or args.otlp_header):
        p.error("--otlp-only and --otlp-header go with --otlp")
    return args, p


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


def flags(short, long):
    return (short, long) if short else (long,)


def seconds(text):
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


def buffer_mb(text):
    if not text.isdigit() or not 1 <= int(text) <= 1024 or int(text) & (int(text) - 1):
        raise argparse.ArgumentTypeError("invalid size %r: a power of two from 1 to 1024 MiB"
                                         % text)
    return int(text)
