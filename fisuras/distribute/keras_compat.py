"""Two narrow fixes so Keras 3's ``model.fit`` runs under ``MultiWorkerMirroredStrategy``.

Keras 3 (checked on 3.15.1 with TF 2.21) still wires ``fit`` for TensorFlow's multi-worker
strategy, but two steps fail as soon as there is more than one worker (keras-team/keras#20585,
tensorflow/tensorflow#72388 — open):

1. ``_maybe_symbolic_build`` all-reduces a whole input batch (``strategy.reduce("MEAN", batch)``)
   only to read its shapes; the multi-worker reduce does not accept the (images, targets) tuple.
   Fixed by taking this worker's first local batch instead: same shapes, no collective.
2. ``reduce_per_replica`` reduces the per-step logs with ``strategy.reduce("MEAN", v, axis=0)``,
   which fails on scalar logs (the loss). Fixed by reducing scalars with ``axis=None``: the mean
   over all replicas, the same value on every worker (so the NaN guard stops all workers at the
   same step).

Nothing else changes: the strategy, its collectives, the distributed dataset and the optimizer
are TensorFlow's and Keras's own. The fixes apply only to a multi-worker strategy and are
installed once, by :func:`fisuras.distribute.make_strategy`, when it creates one.
"""

from __future__ import annotations

from fisuras.train.engine import is_multi_worker

_installed = False


def install() -> None:
    """Install both fixes (idempotent); raise a clear error if this Keras has changed shape."""
    global _installed
    if _installed:
        return
    from keras.src.backend.tensorflow import trainer

    missing = [name for name in ("reduce_per_replica", "TensorFlowTrainer")
               if not hasattr(trainer, name)]
    if missing or not hasattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build"):
        import keras

        raise RuntimeError(
            f"Keras {keras.__version__} no longer has {missing or '_maybe_symbolic_build'}: "
            "fisuras.distribute.keras_compat needs updating for multi-worker training")
    original_reduce = trainer.reduce_per_replica
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not is_multi_worker(strategy):
            return original_reduce(values, strategy, reduction)
        import tensorflow as tf
        from keras.src import tree

        def is_scalar(value) -> bool:
            if isinstance(value, tf.distribute.DistributedValues):  # several GPUs per worker
                value = strategy.experimental_local_results(value)[0]
            shape = getattr(value, "shape", None)
            return shape is not None and shape.rank == 0

        def reduce_one(value):
            if is_scalar(value):
                return strategy.reduce("MEAN", value, axis=None)
            return original_reduce(value, strategy, reduction)

        return tree.map_structure(reduce_one, values)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or strategy is None or not is_multi_worker(strategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        import tensorflow as tf
        from keras.src import tree

        def first_local(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(value)[0]
            return value

        for _, _, batches in iterator:
            data_batch = tree.map_structure(first_local, next(batches))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    _installed = True
