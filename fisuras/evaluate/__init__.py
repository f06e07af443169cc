"""Evaluation: pure NumPy/SciPy metrics and matplotlib plots. No TensorFlow.

Import what you need from its module (this package imports nothing, so that the cheap parts stay
cheap: ``plots`` pulls in matplotlib, ``segmentation`` scikit-image):

* :mod:`~fisuras.evaluate.classification`: patch metrics, ROC/PR, best-F1 threshold, per group.
* :mod:`~fisuras.evaluate.segmentation`: pixel IoU/Dice, tolerance F, ODS/OIS/AP, error overlay.
* :mod:`~fisuras.evaluate.tolerance`: the skeleton matching protocol behind the tolerance F.
* :mod:`~fisuras.evaluate.floor`: the no-learning floor (a black top-hat crack filter) scored by
  the same protocol, printed beside every segmentation result.
* :mod:`~fisuras.evaluate.plots`: training history, confusion matrix, ROC/PR, prediction grid.
"""
