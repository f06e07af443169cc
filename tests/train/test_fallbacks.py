"""A run never dies on an optimisation: XLA or a precision policy that breaks the first step is
turned off, the run goes on, and the log and plan.json say so (real failures, not mocks)."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from fisuras.runs import RunFolder, RunState
from fisuras.train.engine import Engine
from tests.train.tiny import SIZE, tiny_data, tiny_plan, tiny_spec


class HostRoundTrip(keras.layers.Layer):
    """Identity through a NumPy call: runs in a TF graph, cannot be compiled by XLA."""

    def call(self, inputs):
        out = tf.numpy_function(np.asarray, [inputs], inputs.dtype)
        out.set_shape(inputs.shape)
        return inputs + tf.stop_gradient(out - inputs)  # the gradient of an identity

    def compute_output_shape(self, input_shape):
        return input_shape


class Float32Only(keras.layers.Layer):
    """Identity that refuses a reduced-precision input, as a kernel without float16 support."""

    def call(self, inputs):
        if inputs.dtype != tf.float32:
            raise TypeError(f"no {inputs.dtype.name} kernel for this op")
        return inputs

    def compute_output_shape(self, input_shape):  # so building the model does not call it
        return input_shape


def spec_with(layer_class):
    def build():
        keras.utils.set_random_seed(1)
        inputs = keras.Input((SIZE, SIZE, 3))
        x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
        x = layer_class()(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(1, dtype="float32")(x))

    spec = tiny_spec(0, 2)
    spec.build_model = build
    spec.set_backbone_trainable = lambda model, trainable: None
    return spec


def fit(tmp_path, spec, plan):
    run = RunFolder.create(tmp_path / "runs", "detect", "t")
    run.write_state(RunState(task="detect", batch_size=plan.batch_size))
    run.write_json("plan.json", {**plan.to_dict(), "input_sharding": "kept"})
    messages: list[str] = []
    engine = Engine(spec, plan, run, verbose=0, log=messages.append)
    result = engine.fit(tiny_data(), tiny_data(64, seed=1))
    return engine, result, run, messages


def test_an_xla_compile_failure_turns_xla_off_and_training_goes_on(tmp_path):
    plan = replace(tiny_plan(), xla=True)
    engine, result, run, messages = fit(tmp_path, spec_with(HostRoundTrip), plan)
    assert result.state.finished and [row["epoch"] for row in run.read_history()] == [1, 2]
    assert engine.plan.xla is False and engine.plan.precision == "float32"
    assert len(engine.plan.fallbacks) == 1 and "xla off" in engine.plan.fallbacks[0]
    # the error's own first line is kept, so the user can report it
    assert "compile" in engine.plan.fallbacks[0].lower() or "unsupported" in \
        engine.plan.fallbacks[0].lower()
    assert any(m.startswith("fallback: xla off") for m in messages)
    recorded = run.read_json("plan.json")
    assert recorded["xla"] is False and recorded["fallbacks"] == list(engine.plan.fallbacks)
    assert recorded["input_sharding"] == "kept"  # what train() wrote stays
    assert any("fallback" in event for event in run.read_state().events)


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_a_policy_failing_at_the_first_step_falls_back_to_float32(tmp_path, precision):
    plan = replace(tiny_plan(), xla=True, precision=precision)
    engine, result, run, messages = fit(tmp_path, spec_with(Float32Only), plan)
    assert result.state.finished
    assert [note.split(":")[0] for note in engine.plan.fallbacks] == [
        "xla off", f"float32 instead of {precision}"]
    assert engine.model.dtype_policy.name == "float32"
    assert "no " in engine.plan.fallbacks[-1] and "kernel" in engine.plan.fallbacks[-1]
    assert run.read_json("plan.json")["precision"] == "float32"
    losses = [row["loss"] for row in run.read_history()]
    assert np.isfinite(losses).all()


class AlwaysFails(keras.layers.Layer):
    def call(self, inputs):
        raise ValueError("a bug in the model, not an optimisation")

    def compute_output_shape(self, input_shape):
        return input_shape


def test_a_failure_with_nothing_left_to_turn_off_is_raised_unchanged(tmp_path):
    with pytest.raises(ValueError, match="a bug in the model"):
        fit(tmp_path, spec_with(AlwaysFails), replace(tiny_plan(), xla=True))


@pytest.mark.slow
def test_a_failure_after_the_first_step_is_not_blamed_on_an_optimisation(tmp_path):
    from fisuras.train.engine import TrainingDiverged

    plan = replace(tiny_plan(), xla=True)
    run = RunFolder.create(tmp_path / "runs", "detect", "t")
    run.write_state(RunState(task="detect", batch_size=plan.batch_size))
    engine = Engine(tiny_spec(0, 2), plan, run, verbose=0, log=lambda message: None)
    with pytest.raises(TrainingDiverged):
        engine.fit(tiny_data(nan_batch=3), None)
    assert engine.plan.xla is True and engine.plan.fallbacks == ()
