"""The command line keeps TensorFlow's native start-up lines out of its stderr, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from fisuras.native_log import is_noise, log_level

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the filter is POSIX only")

BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
INFO = b"I0000 00:00:1796021986.622175    2477 port.cc:153] oneDNN custom operations are on."
STUB = b"I0000 00:00:1796021986.623440    2477 cudart_stub.cc:31] Could not find cuda drivers"
CUINIT = (b"E0000 00:00:1796021989.555218    2477 cuda_platform.cc:52] failed call to cuInit: "
          b"INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
MISMATCH = (b"E0000 00:00:1796021989.555218    2477 cuda_platform.cc:52] failed call to cuInit: "
            b"CUDA_ERROR_SYSTEM_DRIVER_MISMATCH: system has unsupported display driver")
WARNING = b"W0000 00:00:1796021989.555218    2477 gpu_device.cc:2342] Cannot dlopen GPU libs."
FATAL = b"F0000 00:00:1796021989.555218    2477 op_kernel.cc:12] Check failed: shape"


@pytest.mark.parametrize(("line", "hidden_from_level"), [
    (BANNER, 1), (INFO, 1), (STUB, 1), (WARNING, 2), (CUINIT, 2), (MISMATCH, 3), (FATAL, None),
    (b"Error: no image could be predicted", None), (b"Traceback (most recent call last):", None),
    (b"I think this is fine", None), (b"", None),
])  # fmt: skip
def test_each_native_line_is_hidden_from_its_level_on(line, hidden_from_level):
    for level in range(4):
        expected = hidden_from_level is not None and level >= hidden_from_level
        assert is_noise(line, level) is expected, (line, level)
        assert is_noise(line + b"\r\n", level) is expected


def test_log_level_defaults_to_two_and_reads_like_tensorflow():
    assert log_level({}) == 2 and log_level({"TF_CPP_MIN_LOG_LEVEL": "0"}) == 0
    assert log_level({"TF_CPP_MIN_LOG_LEVEL": "3"}) == 3
    assert log_level({"TF_CPP_MIN_LOG_LEVEL": "loud"}) == 0


def command(body: str, env_level: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``body`` after ``quiet_tensorflow()`` in a fresh process, as the CLI entry would."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if env_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = env_level
    script = "import os, sys\nfrom fisuras.native_log import quiet_tensorflow\n" \
             "quiet_tensorflow()\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          timeout=60, **kwargs)


FIRST, SECOND = BANNER + b"\n" + INFO + b"\n", CUINIT + b"\n" + MISMATCH + b"\n"
NOISY = f"""
os.write(2, {FIRST!r})
print("fisuras: own warning", file=sys.stderr, flush=True)
os.write(2, {SECOND!r})
print("level", os.environ["TF_CPP_MIN_LOG_LEVEL"])
sys.stderr.write("last words, no newline")
"""


@pytest.mark.slow
def test_the_command_line_drops_native_noise_and_keeps_everything_else():
    result = command(NOISY)
    assert result.returncode == 0 and result.stdout == b"level 2\n"  # the default, set once
    assert result.stderr == (b"fisuras: own warning\n" + MISMATCH + b"\n"
                             b"last words, no newline")


@pytest.mark.slow
def test_the_users_level_is_kept_and_zero_shows_everything():
    assert command(NOISY, env_level="3").stdout == b"level 3\n"
    everything = command(NOISY, env_level="0")
    assert everything.stdout == b"level 0\n"
    assert everything.stderr == (BANNER + b"\n" + INFO + b"\nfisuras: own warning\n" + CUINIT
                                 + b"\n" + MISMATCH + b"\nlast words, no newline")


@pytest.mark.slow
def test_a_crash_right_after_its_message_still_shows_the_message():
    # the filter is a separate process: an abort cannot swallow what was written just before
    last_words = INFO + b"\nfatal: the reason\n"
    result = command(f"os.write(2, {last_words!r})\nos.abort()\n")
    assert result.returncode != 0 and result.stderr == b"fatal: the reason\n"


@pytest.mark.slow
def test_a_terminal_stays_a_terminal_for_progress_bars():
    import pty

    master, slave = pty.openpty()
    try:
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import os, sys
            from fisuras.native_log import quiet_tensorflow
            quiet_tensorflow()
            os.write(2, {INFO!r} + b"\\n")
            print("isatty", sys.stderr.isatty(), file=sys.stderr)
        """)], stderr=slave, stdout=subprocess.DEVNULL)
        os.close(slave)
        received = b""
        while True:
            try:
                chunk = os.read(master, 1024)
            except OSError:  # the terminal's last writer is gone
                break
            if not chunk:
                break
            received += chunk
        assert child.wait(timeout=60) == 0
    finally:
        os.close(master)
    assert received.replace(b"\r\n", b"\n") == b"isatty True\n"


@pytest.mark.slow
def test_tensorflow_starts_without_its_native_chatter():
    result = command("""
        import tensorflow as tf
        print(len(tf.config.list_physical_devices("GPU")))
    """)
    assert result.returncode == 0, result.stderr.decode()
    assert BANNER not in result.stderr and b"port.cc" not in result.stderr
    assert not [line for line in result.stderr.splitlines() if is_noise(line, 2)]
