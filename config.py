"""Perillas del entrenamiento turbo (the user's knob file).

Edit these values: `fisuras` and the scripts in scripts/ read them (see `fisuras config show`).
GPU_CONFIG is a request: the hardware plan keeps what your hardware can honour and says why
(`fisuras doctor`, `python3 scripts/utils/verificar_gpu.py`). Anything else can be set in a YAML
run file (`fisuras train detect DATA --config run.yaml`) or by flags.
"""

BATCH_SIZE = 64
EPOCHS_DETECCION = 30
EPOCHS_SEGMENTACION = 35

GPU_CONFIG = {
    'ENABLE_MIXED_PRECISION': True,
    'ENABLE_XLA': True,
    'ENABLE_MEMORY_GROWTH': True,
    'MEMORY_LIMIT_MB': None,
}
