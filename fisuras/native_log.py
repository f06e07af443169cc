"""Keep TensorFlow's native start-up chatter out of the command line's output (CLI only).

On a machine without a GPU, every command that starts TensorFlow (2.21) began with::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796021986.622175    2477 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1796021986.623440    2477 cudart_stub.cc:31] Could not find cuda drivers ...
    E0000 00:00:1796021989.555218    2477 cuda_platform.cc:52] failed call to cuInit: ...

``TF_CPP_MIN_LOG_LEVEL`` filters TensorFlow's own logging, but these lines come from absl's C++
logging before anything initialises it, and no variable reaches them. So :func:`quiet_tensorflow`
(called once by the ``fisuras`` command, before TensorFlow is imported) sets
``TF_CPP_MIN_LOG_LEVEL=2`` unless the user set it, and routes the process's stderr (file
descriptor 2, which C++ writes to) through a small filter process that drops, by that level:

* absl-format lines below it (``I...`` at 1 and up, ``W...`` at 2 and up, ``E...`` at 3);
* absl's "before absl::InitializeLog()" banner (at 1 and up);
* the ``cuInit`` error of a machine with no GPU or no driver (at 2 and up): ``fisuras doctor``
  says so in its own words. Other ``cuInit`` errors (a driver mismatch) still show.

Everything else passes unchanged. The filter is a separate process, not a thread, so a crash of
the command (a fatal TensorFlow check, a segfault) cannot swallow its last lines.
``TF_CPP_MIN_LOG_LEVEL=0`` shows everything. The library never calls this: it sets no process
environment variables and leaves stderr alone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LEVEL = "2"  # hide INFO and WARNING, keep errors
# absl's pre-init format: severity letter, MMDD, time, thread id, file:line]
_ABSL_LINE = re.compile(rb"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# cuInit failing because there is no GPU (100) or no driver library (303): expected on a CPU box
_NO_GPU = re.compile(rb"failed call to cuInit: .*(CUDA_ERROR_NO_DEVICE|\((100|303)\))")
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}

_installed = False


def is_noise(line: bytes, level: int) -> bool:
    """True for a native log line that ``level`` (``TF_CPP_MIN_LOG_LEVEL``) hides.

    Example:
        >>> is_noise(b"I0000 00:00:1796021986.622175    2477 port.cc:153] oneDNN on", 2)
        True
        >>> is_noise(b"Error: no image could be predicted", 3)
        False
    """
    line = line.rstrip(b"\r\n")
    if line == _BANNER:
        return level >= 1
    match = _ABSL_LINE.match(line)
    if match is None:
        return False
    severity = _SEVERITY[match.group(1)]
    if severity == 3:
        return False  # a fatal message explains the crash that follows: never hidden
    return severity < level or (level >= 2 and _NO_GPU.search(line) is not None)


def log_level(environ: Mapping[str, str]) -> int:
    """The ``TF_CPP_MIN_LOG_LEVEL`` in effect (0 when not a number, as TensorFlow reads it)."""
    try:
        return max(0, int(environ.get(LEVEL_VARIABLE, DEFAULT_LEVEL)))
    except ValueError:
        return 0


def quiet_tensorflow() -> None:
    """Default ``TF_CPP_MIN_LOG_LEVEL`` to 2 and filter native stderr lines (once per process).

    Only for a real command line: under ``CliRunner`` or pytest, whose ``sys.stderr`` is not the
    process's, nothing but the variable's default is set.
    """
    global _installed
    os.environ.setdefault(LEVEL_VARIABLE, DEFAULT_LEVEL)  # read by TensorFlow at import
    level = log_level(os.environ)
    if _installed or level < 1 or sys.stderr is not sys.__stderr__ or os.name != "posix":
        return
    _installed = filter_stderr(level)


def filter_stderr(level: int) -> bool:
    """Route file descriptor 2 through :func:`run_filter` in a child process; False if impossible.

    A terminal is replaced by a pseudo-terminal, so ``isatty()`` checks (progress bars, Keras's
    verbosity) answer as before. At exit the descriptor is restored and the child, reading end of
    file, writes what is left.
    """
    if not sys.executable:
        return False
    try:
        sys.stderr.flush()
        original = os.dup(2)
        read_end, write_end = _terminal_like(original) if os.isatty(original) else os.pipe()
    except (OSError, ValueError):
        return False
    root = str(Path(__file__).resolve().parents[1])
    program = (f"import sys; sys.path.insert(0, {root!r}); "
               f"from fisuras.native_log import run_filter; run_filter({level})")
    try:
        child = subprocess.Popen([sys.executable, "-S", "-E", "-c", program],
                                 stdin=read_end, stdout=original, stderr=original)
    except OSError:
        for fd in (original, read_end, write_end):
            os.close(fd)
        return False
    os.dup2(write_end, 2)
    os.close(write_end)
    os.close(read_end)

    def restore() -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(original, 2)  # the last writer here is gone: the child reads end of file
        os.close(original)
        # Its last lines before the shell prompt (unless a grandchild still holds the pipe).
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)

    atexit.register(restore)
    return True


def _terminal_like(terminal: int) -> tuple[int, int]:
    """A raw pseudo-terminal ``(master, slave)`` with ``terminal``'s window size."""
    import fcntl
    import termios
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)  # bytes pass unchanged: no newline translation on the way
    try:
        size = fcntl.ioctl(terminal, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
    except OSError:
        pass
    return master, slave


def run_filter(level: int) -> None:
    """Copy stdin to stdout, dropping :func:`is_noise` lines (the filter process's body).

    Ctrl-C and a terminate signal reach the whole process group: the filter ignores them and
    ends when the command does (end of file), so the command's last words still get through.
    """
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    source, sink = sys.stdin.fileno(), sys.stdout.fileno()
    pending = b""
    while chunk := _read(source):
        *lines, pending = (pending + chunk).split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not is_noise(line, level))
        # A native line arrives whole, in one write; text without its newline yet (a prompt, a
        # progress bar) goes out now, unless it starts like one (I, W, E or F) and may be one.
        if pending[:1] not in _SEVERITY:
            kept, pending = kept + pending, b""
        _write_all(sink, kept)
    _write_all(sink, pending)


def _read(fd: int) -> bytes:
    """Next bytes, or b"" at the end (a pseudo-terminal says EIO once its last writer closes)."""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass  # stderr closed: keep reading, so the command never blocks on a full pipe
