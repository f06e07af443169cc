"""``fisuras launch``: start N local worker processes with TF_CONFIG, forward their output.

For multi-process runs on one machine (tests, benchmarks, or one worker per GPU). Each worker
gets the same cluster of free ports on 127.0.0.1 and its own task index; its output lines are
prefixed ``[worker i]``. When a worker fails the others are stopped (synchronous training cannot
go on without it) and, with ``restarts``, all are started again: a named run then resumes from the
chief's last checkpoint.

On several machines the cluster manager starts the processes instead; ``tf_config_for`` gives
the TF_CONFIG each one needs (README.md, "Scaling out").

Example:
    >>> launch(["fisuras", "train", "detect", "data/SDNET2018", "--name", "x"], workers=2)
    ...     # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TextIO

from fisuras.distribute.cluster import DistributeError, tf_config_for

LAUNCH_PREFIX = "[launch]"


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that are free now (the OS picks them; they are held until all
    are chosen, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def worker_environments(base: Mapping[str, str], ports: Sequence[int], host: str = "127.0.0.1",
                        gpu_ids: Sequence[int] = ()) -> list[dict[str, str]]:
    """The environment of each local worker: ``base`` + its TF_CONFIG (+ its own GPUs).

    GPUs are divided evenly when there are at least as many as workers; otherwise every worker
    sees all of them (and TensorFlow shares them).

    Example:
        >>> envs = worker_environments({}, [1111, 2222])
        >>> json.loads(envs[1]["TF_CONFIG"])["task"]
        {'type': 'worker', 'index': 1}
    """
    hosts = [f"{host}:{port}" for port in ports]
    per_worker = len(gpu_ids) // len(hosts) if len(gpu_ids) >= len(hosts) else 0
    environments = []
    for index in range(len(hosts)):
        env = dict(base)
        env["TF_CONFIG"] = json.dumps(tf_config_for(hosts, index))
        if per_worker:
            mine = gpu_ids[index * per_worker:(index + 1) * per_worker]
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in mine)
        environments.append(env)
    return environments


def worker_command(command: Sequence[str], python: str = sys.executable) -> list[str]:
    """The command each worker runs: ``fisuras ...`` runs with this Python (``-m fisuras``)."""
    command = list(command)
    if not command:
        raise DistributeError("no command to launch, e.g. fisuras launch --workers 2 -- "
                              "fisuras train detect DATA --name run1")
    if command[0] == "fisuras":
        return [python, "-m", "fisuras", *command[1:]]
    return command


def with_run_name(command: Sequence[str], name: str) -> list[str]:
    """Add ``--name name`` to a ``train`` command that has neither ``--name`` nor ``--resume``.

    Every worker, and a restarted job, must use the same run folder.
    """
    command = list(command)
    named = any(a in ("--name", "--resume") or a.startswith(("--name=", "--resume="))
                for a in command)
    return command if named or "train" not in command else [*command, "--name", name]


def launch(command: Sequence[str], workers: int, *, restarts: int = 0, host: str = "127.0.0.1",
           environ: Mapping[str, str] | None = None, out: TextIO | None = None,
           gpu_ids: Sequence[int] = (), grace_seconds: float = 10.0,
           python: str = sys.executable) -> int:
    """Run ``command`` as ``workers`` processes; return 0 when all succeed, else a failing code.

    After a failure every worker is stopped, and with ``restarts`` left all start again.
    """
    if workers < 1:
        raise DistributeError(f"workers={workers}; allowed: 1 or more")
    out = out or sys.stdout
    environ = dict(os.environ if environ is None else environ)
    command = worker_command(command, python)
    if workers > 1:
        command = with_run_name(command, time.strftime("launch-%Y%m%d-%H%M%S"))
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            out.write(line if line.endswith("\n") else line + "\n")
            out.flush()

    say(f"{LAUNCH_PREFIX} {workers} worker(s): {' '.join(command)}")
    code = 1
    for attempt in range(restarts + 1):
        code = _run_once(command, worker_environments(environ, free_ports(workers, host), host,
                                                      gpu_ids), say, grace_seconds)
        if code == 0:
            return 0
        if attempt < restarts:
            say(f"{LAUNCH_PREFIX} restarting all workers (restart {attempt + 1} of {restarts})")
    return code


def _run_once(command: list[str], environments: list[dict[str, str]], say,
              grace_seconds: float) -> int:
    processes: list[subprocess.Popen] = []
    forwarders = []
    try:
        for index, env in enumerate(environments):
            process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, bufsize=1,
                                       errors="replace")
            processes.append(process)
            say(f"{LAUNCH_PREFIX} worker {index}: pid {process.pid}")
            forwarder = threading.Thread(target=_forward, args=(process, index, say), daemon=True)
            forwarder.start()
            forwarders.append(forwarder)
        while True:
            codes = [p.poll() for p in processes]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                index, code = failed[0]
                say(f"{LAUNCH_PREFIX} worker {index} exited with code {code}: stopping the "
                    "others (synchronous training cannot go on without it)")
                return code
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.2)
    finally:
        _stop(processes, grace_seconds)
        for forwarder in forwarders:
            forwarder.join(timeout=5)


def _forward(process: subprocess.Popen, index: int, say) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        say(f"[worker {index}] {line.rstrip()}")


def _stop(processes: list[subprocess.Popen], grace_seconds: float) -> None:
    """SIGTERM the running ones, then SIGKILL whatever is left after the grace period."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
