"""Create the tf.distribute strategy the hardware plan chose (the TensorFlow side effects).

* ``default``: TensorFlow's default strategy (one device, nothing distributed);
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over the plan's local devices (GPUs, or logical
  CPU devices on a machine without GPUs, created here before TensorFlow starts its runtime);
* ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` over the cluster in TF_CONFIG
  (NCCL all-reduce between GPUs, ring all-reduce between CPUs).

A process can hold one such strategy only (two MirroredStrategy objects clash, TF_CONFIG is read
once), so the strategy is created once per process and reused.

Example:
    >>> strategy = make_strategy(plan, cluster)          # doctest: +SKIP
    >>> strategy.num_replicas_in_sync == plan.replicas   # doctest: +SKIP
    True
"""

from __future__ import annotations

from fisuras.distribute.cluster import Cluster, DistributeError
from fisuras.hardware.plan import Plan

_created: dict[tuple, object] = {}  # one strategy per process (see the module docstring)


def make_strategy(plan: Plan, cluster: Cluster | None = None):
    """The ``tf.distribute.Strategy`` for ``plan`` (and ``cluster`` for multi-worker plans)."""
    import tensorflow as tf

    if plan.strategy == "default":
        return tf.distribute.get_strategy()
    key = (plan.strategy, plan.device, plan.local_devices, cluster)
    if key in _created:
        return _created[key]
    if _created:
        raise DistributeError(
            f"this process already created a {next(iter(_created))[0]} strategy; TensorFlow "
            "cannot hold two (start another process, e.g. with `fisuras launch`)")
    if plan.strategy == "mirrored":
        strategy = tf.distribute.MirroredStrategy(devices=local_devices(plan))
    elif plan.strategy == "multi_worker":
        strategy = _multi_worker(plan, cluster)
    else:
        raise DistributeError(f"unknown strategy {plan.strategy!r} in the plan")
    if strategy.num_replicas_in_sync != plan.replicas:
        raise DistributeError(
            f"the plan expects {plan.replicas} replicas but TensorFlow created "
            f"{strategy.num_replicas_in_sync}; check `fisuras doctor` (devices visible to "
            "TensorFlow) and the devices/workers settings")
    _created[key] = strategy
    return strategy


def local_devices(plan: Plan) -> list[str]:
    """Device names for this process's replicas: the first N GPUs, or N logical CPU devices."""
    import tensorflow as tf

    count = plan.local_devices
    if plan.device == "gpu":
        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) < count:
            raise DistributeError(f"the plan wants {count} GPUs, TensorFlow sees {len(gpus)}")
        return [gpu.name for gpu in gpus[:count]]
    ensure_logical_cpus(count)
    return [device.name for device in tf.config.list_logical_devices("CPU")[:count]]


def ensure_logical_cpus(count: int) -> None:
    """Split the CPU into ``count`` logical devices (possible only before TF starts its runtime).

    They share the same cores: for tests and checks of distributed code on a machine without
    GPUs, not for speed.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError as error:
        raise DistributeError(
            f"cannot split the CPU into {count} logical devices: TensorFlow has already started "
            f"in this process ({error}); create the strategy before running any TensorFlow "
            "op") from None


def _multi_worker(plan: Plan, cluster: Cluster | None):
    import tensorflow as tf

    from fisuras.distribute import keras_compat

    if cluster is None:
        raise DistributeError("a multi-worker plan needs TF_CONFIG (see `fisuras launch`)")
    if cluster.num_workers != plan.workers:
        raise DistributeError(f"the plan is for {plan.workers} workers, TF_CONFIG lists "
                              f"{cluster.num_workers}")
    if plan.device == "gpu":
        # Each worker drives its first local_devices GPUs (the launcher gives each local worker
        # its own cards through CUDA_VISIBLE_DEVICES).
        gpus = tf.config.list_physical_devices("GPU")
        tf.config.set_visible_devices(gpus[:plan.local_devices], "GPU")
    implementation = (tf.distribute.experimental.CommunicationImplementation.NCCL
                      if plan.device == "gpu" else
                      tf.distribute.experimental.CommunicationImplementation.RING)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(_cluster_spec(cluster)), task_type=cluster.task_type,
        task_id=cluster.task_index, rpc_layer="grpc",
        num_accelerators={"GPU": plan.local_devices} if plan.device == "gpu" else None)
    keras_compat.install()
    return tf.distribute.MultiWorkerMirroredStrategy(
        cluster_resolver=resolver,
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=implementation))


def _cluster_spec(cluster: Cluster) -> dict[str, list[str]]:
    spec = {"worker": list(cluster.workers)}
    if cluster.chief:
        spec["chief"] = list(cluster.chief)
    return spec


def broadcast_from_chief(strategy, value: int) -> int:
    """The chief's ``value`` on every worker (a collective: every worker must call it).

    Used to agree on decisions that each worker could otherwise take differently, e.g. whether a
    restarted job resumes its run. Replica 0 is the chief's first device.

    Example:
        >>> broadcast_from_chief(strategy, 1 if run_exists else 0)  # doctest: +SKIP
    """
    import tensorflow as tf

    mine = tf.constant(int(value), tf.int64)

    @tf.function
    def agree():
        def replica_step():
            context = tf.distribute.get_replica_context()
            first = tf.equal(context.replica_id_in_sync_group, 0)
            return context.all_reduce("sum", tf.where(first, mine, tf.zeros_like(mine)))

        return strategy.run(replica_step)

    return int(strategy.experimental_local_results(agree())[0].numpy())
