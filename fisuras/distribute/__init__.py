"""Scale out on tf.distribute: several GPUs of one machine, and several machines.

The hardware plan (``fisuras.hardware.plan``) chooses, from the ``devices`` and ``workers``
settings, TensorFlow's own strategy and says why:

* one device -> the default strategy;
* ``devices: all|N`` -> ``MirroredStrategy`` over this machine's GPUs (logical CPU devices on a
  machine without GPUs, for tests);
* several workers (TF_CONFIG) -> ``MultiWorkerMirroredStrategy``.

The batch in the plan is per replica; the global batch and the learning rate scale with the
replicas. This package creates the strategy (:func:`make_strategy`), reads TF_CONFIG
(:func:`parse_tf_config`, :func:`is_chief`), splits the input between workers
(:func:`choose_sharding`), runs training with the workers' agreements (:func:`train_distributed`)
and starts local multi-process runs (:func:`launch`). Only the chief writes the run folder.

TensorFlow is imported only by the functions that need it.
"""

from __future__ import annotations

from fisuras.data.sharding import Sharding, choose_sharding
from fisuras.distribute.cluster import (
    Cluster,
    DistributeError,
    check_workers_setting,
    cluster_from_environ,
    is_chief,
    parse_tf_config,
    tf_config_for,
)
from fisuras.distribute.launch import launch
from fisuras.distribute.training import settings_for_environment, train_distributed

__all__ = [
    "Cluster", "DistributeError", "Sharding", "check_workers_setting", "choose_sharding",
    "cluster_from_environ", "is_chief", "launch", "make_strategy", "parse_tf_config",
    "settings_for_environment", "tf_config_for", "train_distributed",
]


def make_strategy(plan, cluster=None):
    """The ``tf.distribute.Strategy`` for ``plan`` (see ``fisuras.distribute.strategy``)."""
    from fisuras.distribute.strategy import make_strategy as make

    return make(plan, cluster)
