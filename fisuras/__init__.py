"""fisuras: fast, measured deep learning for concrete crack detection and segmentation.

The package is organised by concept: ``config`` (settings), ``hardware`` (facts, plan, apply),
``data`` (readers, checks, splits, pipeline), ``models``, ``train`` (one engine), ``evaluate``,
``infer`` and ``bench``. Importing ``fisuras`` does not import TensorFlow.
"""

__version__ = "0.1.0"
