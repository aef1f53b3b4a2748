"""A reference `LayerNormalization` that exposes its last per-sample statistics."""

from __future__ import annotations

from typing import Any

import keras
from keras import constraints, initializers, ops, regularizers


@keras.saving.register_keras_serializable(package="bnscope")
class LayerNormalization(keras.layers.Layer):
    """Layer normalization (Ba, Kiros & Hinton, 2016), written from its definition.

    A drop-in replacement for `keras.layers.LayerNormalization` (same argument
    names, defaults, weights and numbers) that also keeps the statistics it
    last normalized with.

    Each sample is normalized on its own, across the axes in `axis`, with the
    mean `mu` and the biased variance `var` taken over those axes:

    `y = gamma * (x - mu) / sqrt(var + epsilon) + beta`

    `gamma` and `beta` span the normalized axes. There is no batch statistic,
    no moving statistic and no difference between training and inference.
    As in Keras, inputs are not cast to the compute dtype and statistics are
    computed in at least float32; only the outputs are cast (float16 under a
    `mixed_float16` policy).

    After every call the layer sets two plain Python attributes,
    `last_mean` and `last_variance`: the per-sample mean and biased variance as
    float32 tensors, shaped like the input without the normalized axes (for
    inputs `(batch, steps, features)` and `axis=-1`, `(batch, steps)`).
    Inside a `tf.function` they are the symbolic tensors of that trace: read
    them right after calling the layer, in the same traced function.

    Args:
        axis: Integer or list of integers, the axis or axes to normalize
            across. Defaults to `-1`.
        epsilon: Small float added to the variance to avoid dividing by zero.
            Defaults to `1e-3`.
        center: If `True`, add the learned offset `beta`. Defaults to `True`.
        scale: If `True`, multiply by the learned scale `gamma`.
            Defaults to `True`.
        beta_initializer: Initializer for `beta`. Defaults to `"zeros"`.
        gamma_initializer: Initializer for `gamma`. Defaults to `"ones"`.
        beta_regularizer: Optional regularizer for `beta`. Defaults to `None`.
        gamma_regularizer: Optional regularizer for `gamma`. Defaults to `None`.
        beta_constraint: Optional constraint for `beta`. Defaults to `None`.
        gamma_constraint: Optional constraint for `gamma`. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: Input tensor of any rank. A Keras mask passes through unchanged
            (each sample is normalized on its own, so masking has no effect).

    Example:

    >>> layer = LayerNormalization()
    >>> x = keras.ops.convert_to_tensor([[2.0, 5.0, 7.0]])
    >>> y = layer(x)
    >>> tuple(layer.last_mean.shape)
    (1,)
    """

    def __init__(
        self,
        axis: int | list[int] | tuple[int, ...] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis: int | list[int] = [int(a) for a in axis]
        elif isinstance(axis, int):
            self.axis = axis
        else:
            raise TypeError(
                f"`axis` must be an int or a list of ints. Received: axis={axis!r}"
            )
        if epsilon < 0:
            raise ValueError(f"`epsilon` must be >= 0. Received: epsilon={epsilon}")
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True
        # As in Keras: take inputs in their own dtype (float32 stays float32
        # under mixed precision) and cast only the outputs.
        self.autocast = False
        self.gamma = None
        self.beta = None
        self.last_mean = None
        self.last_variance = None

    def build(self, input_shape: tuple) -> None:
        rank = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for axis in axes:
            if not -rank <= axis < rank:
                raise ValueError(
                    f"Axis {axis} is out of bounds for input shape "
                    f"{input_shape}. Received: axis={self.axis}"
                )
        self._norm_axes = tuple(sorted({axis % rank for axis in axes}))
        shape = tuple(input_shape[axis] for axis in self._norm_axes)
        if None in shape:
            raise ValueError(
                "The normalized axes of the input must be known. "
                f"Received: input_shape={input_shape}, axis={self.axis}"
            )
        # gamma and beta broadcast against inputs with 1 on the other axes.
        self._broadcast_shape = tuple(
            input_shape[i] if i in self._norm_axes else 1 for i in range(rank)
        )
        if self.scale:
            self.gamma = self.add_weight(
                shape=shape,
                name="gamma",
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
                trainable=True,
                autocast=False,
            )
        if self.center:
            self.beta = self.add_weight(
                shape=shape,
                name="beta",
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
                trainable=True,
                autocast=False,
            )

    def call(self, inputs):
        # float16 squares overflow above 256, so statistics are at least float32.
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        inputs = ops.cast(inputs, dtype)
        axes = self._norm_axes
        mean = ops.mean(inputs, axis=axes, keepdims=True)
        variance = ops.mean(ops.square(inputs - mean), axis=axes, keepdims=True)
        self.last_mean = ops.squeeze(mean, axis=axes)
        self.last_variance = ops.squeeze(variance, axis=axes)

        outputs = (inputs - mean) * ops.rsqrt(variance + self.epsilon)
        if self.scale:
            gamma = ops.reshape(ops.cast(self.gamma, dtype), self._broadcast_shape)
            outputs = outputs * gamma
        if self.center:
            beta = ops.reshape(ops.cast(self.beta, dtype), self._broadcast_shape)
            outputs = outputs + beta
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = {
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }
        return {**super().get_config(), **config}
