"""Puerta del seed: ``configurar_gpu_maxima_velocidad(verbose=True)``.

Call it at the top of your own script, before ``import tensorflow``::

    from scripts.utils.configurar_gpu import configurar_gpu_maxima_velocidad
    plan = configurar_gpu_maxima_velocidad(verbose=True)
    import tensorflow as tf

It reads the root ``config.py`` (GPU_CONFIG, BATCH_SIZE), plans from the hardware it finds
(``fisuras.hardware``), sets the environment TensorFlow reads at start-up, then applies memory,
threads and precision policy. XLA is per model: compile yours with ``jit_compile=plan.xla``
(Keras's default ``"auto"`` turns XLA on even where the plan found it slower). Idempotent;
never raises.
"""

from __future__ import annotations

import sys

from scripts import _door  # noqa: F401  (puts the repository on sys.path)


def configurar_gpu_maxima_velocidad(verbose: bool = True):
    """Apply the hardware plan for this machine and return it (a ``fisuras.hardware.Plan``).

    On a machine without a GPU it prints that it falls back to the CPU, and why.
    Returns None only if fisuras itself cannot be imported (the message says how to install it).
    """
    try:
        from fisuras import hardware
        from fisuras.config import load_settings

        settings = load_settings(_door.KNOB_FILE if _door.KNOB_FILE.is_file() else None)
        return hardware.configure(settings, verbose=verbose).plan
    except Exception as error:  # a speed setting must never stop the user's script
        print(f"configurar_gpu_maxima_velocidad: configuration not applied ({error}); "
              "TensorFlow will run with its defaults. Install with `make demo` or "
              "`pip install -e .`.", file=sys.stderr)
        return None


if __name__ == "__main__":
    configurar_gpu_maxima_velocidad(verbose=True)
