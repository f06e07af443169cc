"""Small building blocks shared by the classifier and the segmenter.

Every custom layer is registered with Keras (package "fisuras") and has a config, so a saved model
loads with ``keras.models.load_model(path, safe_mode=True)``; no Lambda layers anywhere.
"""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="fisuras")
class CaffePreprocess(layers.Layer):
    """ResNet50's "caffe" preprocessing: RGB 0..255 -> BGR minus the ImageNet channel means.

    Same result as ``keras.applications.resnet50.preprocess_input``, but as a layer inside the
    model, so the data pipeline can feed raw 0..255 images to every backbone.

    Example:
        >>> CaffePreprocess()(np.full((1, 1, 1, 3), 128.0))  # doctest: +SKIP
        [[[[24.061, 11.221, 4.32]]]]
    """

    MEAN_BGR = (103.939, 116.779, 123.68)

    def call(self, inputs):
        bgr = ops.flip(inputs, axis=-1)
        return bgr - ops.convert_to_tensor(self.MEAN_BGR, dtype=bgr.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def conv_block(x, filters: int, name: str, *, convs: int = 2, kernel_size: int = 3):
    """``convs`` times Conv (no bias: BatchNorm follows) -> BatchNorm -> ReLU, "same" padding."""
    for index in range(1, convs + 1):
        x = layers.Conv2D(
            filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv{index}"
        )(x)
        # momentum 0.9, not Keras's 0.99: small CPU runs take a few hundred steps, and at 0.99
        # the inference statistics would still be near their initial values (validation stuck).
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{index}")(x)
        x = layers.ReLU(name=f"{name}_relu{index}")(x)
    return x


@keras.saving.register_keras_serializable(package="fisuras")
class BilinearUpSampling2D(layers.UpSampling2D):
    """``UpSampling2D(interpolation="bilinear")`` that keeps one dtype in a compiled graph.

    The resize runs in float32 and the result is cast back to the layer's compute dtype. Under a
    ``mixed_float16``/``mixed_bfloat16`` policy with XLA, Keras's bilinear resize on half-precision
    input compiles to a float32 ``ResizeBilinearGrad`` feeding a half-precision ``ReluGrad``, which
    XLA's HLO verifier rejects ("Seen floating point types of different precisions"); resizing in
    float32 gives the gradient one dtype on each side of the casts. Same values as the Keras layer
    in float32.

    Example:
        >>> BilinearUpSampling2D(name="up2")(np.ones((1, 2, 2, 1))).shape  # doctest: +SKIP
        TensorShape([1, 4, 4, 1])
    """

    def __init__(self, size=(2, 2), **kwargs):
        kwargs.pop("interpolation", None)  # always bilinear; the key is in the saved config
        super().__init__(size=size, interpolation="bilinear", **kwargs)

    def call(self, inputs):
        upsampled = super().call(ops.cast(inputs, "float32"))
        return ops.cast(upsampled, self.compute_dtype)
