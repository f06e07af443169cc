"""TF_CONFIG: who is in the cluster and who this process is (pure: no TensorFlow, no sockets).

TensorFlow's ``MultiWorkerMirroredStrategy`` learns the cluster from the ``TF_CONFIG``
environment variable, a JSON document such as::

    {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
     "task": {"type": "worker", "index": 0}}

Every worker gets the same ``cluster`` and its own ``task``. The *chief* (the one process that
writes the run folder) is the task of type ``"chief"`` when the cluster has one, otherwise worker 0
(TensorFlow's own rule).

Example:
    >>> config = tf_config_for(["10.0.0.1:2222", "10.0.0.2:2222"], index=1)
    >>> cluster = parse_tf_config(json.dumps(config))
    >>> cluster.num_workers, cluster.is_chief, cluster.rank
    (2, False, 1)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fisuras.errors import FisurasError

TF_CONFIG = "TF_CONFIG"
SUPPORTED_TYPES = ("chief", "worker")  # MultiWorkerMirroredStrategy has no ps/evaluator roles


class DistributeError(FisurasError, ValueError):
    """A bad TF_CONFIG, or settings that contradict the cluster; the message says what to fix."""


@dataclass(frozen=True)
class Cluster:
    """The training cluster as TF_CONFIG describes it, and this process's place in it."""

    chief: tuple[str, ...]  # zero or one address
    workers: tuple[str, ...]
    task_type: str  # "chief" | "worker"
    task_index: int

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every process, in TensorFlow's rank order: the chief (if any) first, then workers."""
        return self.chief + self.workers

    @property
    def num_workers(self) -> int:
        """Processes taking part in training (the chief trains too)."""
        return len(self.addresses)

    @property
    def rank(self) -> int:
        """This process's position in :attr:`addresses` (0 is the chief)."""
        return self.task_index if self.task_type == "chief" else len(self.chief) + self.task_index

    @property
    def is_chief(self) -> bool:
        """True for the one process that writes the run folder, checkpoints and reports."""
        return self.rank == 0

    @property
    def address(self) -> str:
        return self.addresses[self.rank]


def parse_tf_config(text: str) -> Cluster:
    """Read a TF_CONFIG JSON string; raise :class:`DistributeError` saying what is wrong."""
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise DistributeError(f"TF_CONFIG is not valid JSON ({error}): {text[:200]!r}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise DistributeError('TF_CONFIG needs a "cluster" mapping, e.g. {"cluster": {"worker": '
                              '["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
                              '"index": 0}}')
    cluster = config["cluster"]
    unknown = sorted(set(cluster) - set(SUPPORTED_TYPES))
    if unknown:
        raise DistributeError(f"TF_CONFIG cluster has {', '.join(unknown)}: "
                              "MultiWorkerMirroredStrategy only uses 'chief' and 'worker' tasks")
    chief, workers = _addresses(cluster, "chief"), _addresses(cluster, "worker")
    if len(chief) > 1:
        raise DistributeError(f"TF_CONFIG lists {len(chief)} chiefs; at most one is allowed")
    if not workers and not chief:
        raise DistributeError("TF_CONFIG cluster lists no workers")
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise DistributeError('TF_CONFIG needs "task": {"type": "worker", "index": N} '
                              "saying which of the cluster's processes this one is")
    task_type, index = task["type"], task["index"]
    members = {"chief": chief, "worker": workers}.get(task_type)
    if members is None:
        raise DistributeError(f"TF_CONFIG task type {task_type!r}; allowed: "
                              f"{', '.join(SUPPORTED_TYPES)}")
    if not isinstance(index, int) or not 0 <= index < len(members):
        raise DistributeError(f"TF_CONFIG task index {index!r} is not one of the "
                              f"{len(members)} {task_type} address(es)")
    addresses = chief + workers
    if len(set(addresses)) != len(addresses):
        raise DistributeError(f"TF_CONFIG lists an address twice: {list(addresses)}")
    return Cluster(chief=chief, workers=workers, task_type=task_type, task_index=index)


def _addresses(cluster: dict, task_type: str) -> tuple[str, ...]:
    value = cluster.get(task_type, [])
    if not isinstance(value, list) or not all(isinstance(a, str) and ":" in a for a in value):
        raise DistributeError(f"TF_CONFIG cluster[{task_type!r}] must be a list of 'host:port' "
                              f"strings, got {value!r}")
    return tuple(value)


def cluster_from_environ(environ: Mapping[str, str]) -> Cluster | None:
    """The cluster described by ``environ["TF_CONFIG"]``, or None when it is unset or empty."""
    text = environ.get(TF_CONFIG, "").strip()
    return parse_tf_config(text) if text else None


def is_chief(environ: Mapping[str, str]) -> bool:
    """True unless TF_CONFIG says this process is a non-chief worker (no TF_CONFIG: chief).

    Example:
        >>> is_chief({})
        True
    """
    cluster = cluster_from_environ(environ)
    return cluster is None or cluster.is_chief


def tf_config_for(hosts: Sequence[str], index: int) -> dict:
    """TF_CONFIG for worker ``index`` of ``hosts`` ("host:port" each; worker 0 is the chief).

    Example:
        >>> tf_config_for(["a:1", "b:1"], 0)["task"]
        {'type': 'worker', 'index': 0}
    """
    hosts = list(hosts)
    if not hosts:
        raise DistributeError("no hosts given")
    bad = [h for h in hosts if ":" not in h or not h.rsplit(":", 1)[1].isdigit()]
    if bad:
        raise DistributeError(f"hosts must be 'host:port', got {bad}")
    if not 0 <= index < len(hosts):
        raise DistributeError(f"index {index} is not one of the {len(hosts)} hosts (0..."
                              f"{len(hosts) - 1})")
    return {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}


def check_workers_setting(workers_setting: int, cluster: Cluster | None) -> int:
    """The number of workers a run uses: TF_CONFIG's count, which ``workers`` must agree with.

    ``workers`` left at its default 1 follows TF_CONFIG (the launcher and the clusters set it);
    another value that differs from TF_CONFIG is an error, as is ``workers > 1`` without it.
    """
    if cluster is None:
        if workers_setting > 1:
            raise DistributeError(
                f"workers={workers_setting} needs TF_CONFIG telling each process the cluster: "
                f"start the processes with `fisuras launch --workers {workers_setting} -- ...` "
                "on one machine, or see README.md 'Scaling out' for several machines")
        return 1
    if workers_setting not in (1, cluster.num_workers):
        raise DistributeError(f"workers={workers_setting} but TF_CONFIG lists "
                              f"{cluster.num_workers} processes; leave workers unset or make "
                              "them agree")
    return cluster.num_workers
