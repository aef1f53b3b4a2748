"""A reference `BatchNormalization` that exposes its last batch statistics."""

from __future__ import annotations

from typing import Any

import keras
from keras import constraints, initializers, ops, regularizers


@keras.saving.register_keras_serializable(package="bnscope")
class BatchNormalization(keras.layers.Layer):
    """Batch normalization (Ioffe & Szegedy, 2015), written from its definition.

    A drop-in replacement for `keras.layers.BatchNormalization` (same argument
    names, defaults, weights and numbers) that also keeps the statistics of the
    batch it last normalized, so bnscope can read them instead of computing
    them again.

    For each channel `c` along `axis`, with the mean `mu_c` and the biased
    variance `var_c` taken over every other axis:

    `y = gamma_c * (x - mu_c) / sqrt(var_c + epsilon) + beta_c`

    **In training mode** (`training=True` and `layer.trainable`), `mu_c` and
    `var_c` are the statistics of the current batch, and the moving statistics
    are updated as
    `moving = moving * momentum + batch * (1 - momentum)`.
    **In inference mode** (`training` false, or `layer.trainable = False`,
    exactly as in Keras), `mu_c` and `var_c` are the moving statistics, which
    are left unchanged.

    Statistics are computed in at least float32, so under a `mixed_float16`
    policy the layer takes and returns float16 but never squares in float16.

    After every call the layer sets three plain Python attributes:

    - `last_training_mode`: `True` when that call used batch statistics.
    - `last_batch_mean`, `last_batch_variance`: the batch mean and biased
      variance, with the shape of `moving_mean` (one value per channel), as
      float32 tensors; `None` when the call used the moving statistics.

    Inside a `tf.function` these are the symbolic tensors of that trace: read
    them right after calling the layer, in the same traced function (this is
    what the bnscope probe does). Outside the trace they are of no use.

    Args:
        axis: Integer, the channel axis to keep; statistics are taken over all
            other axes. Defaults to `-1`.
        momentum: Momentum of the moving average. Defaults to `0.99`.
        epsilon: Small float added to the variance to avoid dividing by zero.
            Defaults to `1e-3`.
        center: If `True`, add the learned offset `beta`. Defaults to `True`.
        scale: If `True`, multiply by the learned scale `gamma`.
            Defaults to `True`.
        beta_initializer: Initializer for `beta`. Defaults to `"zeros"`.
        gamma_initializer: Initializer for `gamma`. Defaults to `"ones"`.
        moving_mean_initializer: Initializer for the moving mean.
            Defaults to `"zeros"`.
        moving_variance_initializer: Initializer for the moving variance.
            Defaults to `"ones"`.
        beta_regularizer: Optional regularizer for `beta`. Defaults to `None`.
        gamma_regularizer: Optional regularizer for `gamma`. Defaults to `None`.
        beta_constraint: Optional constraint for `beta`. Defaults to `None`.
        gamma_constraint: Optional constraint for `gamma`. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: Input tensor of any rank.
        training: Python boolean. `True` normalizes with the batch statistics
            and updates the moving ones (only if the layer is trainable);
            `False` or `None` normalizes with the moving statistics.
        mask: Optional boolean tensor with one dimension less than `inputs`.
            Masked-out positions are left out of the batch statistics.

    Example:

    >>> layer = BatchNormalization()
    >>> x = keras.ops.convert_to_tensor([[2.0], [5.0], [7.0]])
    >>> y = layer(x, training=True)
    >>> float(layer.last_batch_mean[0])  # doctest: +ELLIPSIS
    4.666...
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if epsilon < 0:
            raise ValueError(f"`epsilon` must be >= 0. Received: epsilon={epsilon}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True
        self.gamma = None
        self.beta = None
        self.moving_mean = None
        self.moving_variance = None
        self.last_training_mode = False
        self.last_batch_mean = None
        self.last_batch_variance = None

    def build(self, input_shape: tuple) -> None:
        rank = len(input_shape)
        if not -rank <= self.axis < rank:
            raise ValueError(
                f"Axis {self.axis} is out of bounds for input shape "
                f"{input_shape}. Received: axis={self.axis}"
            )
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(
                "The channel axis of the input must be known. "
                f"Received: input_shape={input_shape}, axis={self.axis}"
            )
        shape = (channels,)
        # Statistics and affine parameters stay float32 under mixed precision.
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
        self.moving_mean = self.add_weight(
            shape=shape,
            name="moving_mean",
            initializer=self.moving_mean_initializer,
            trainable=False,
            autocast=False,
        )
        self.moving_variance = self.add_weight(
            shape=shape,
            name="moving_variance",
            initializer=self.moving_variance_initializer,
            trainable=False,
            autocast=False,
        )
        self.input_spec = keras.InputSpec(ndim=rank, axes={self.axis: channels})
        self._channel_axis = self.axis % rank
        self._reduction_axes = tuple(i for i in range(rank) if i != self._channel_axis)
        self._broadcast_shape = tuple(
            channels if i == self._channel_axis else 1 for i in range(rank)
        )

    def call(self, inputs, training: bool | None = None, mask=None):
        if mask is not None and len(mask.shape) != len(inputs.shape) - 1:
            raise ValueError(
                "The mask must have one dimension less than the inputs. "
                f"Received: mask.shape={mask.shape}, inputs.shape={inputs.shape}"
            )
        # float16 squares overflow above 256, so statistics are at least float32.
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        inputs = ops.cast(inputs, dtype)
        use_batch_statistics = bool(training and self.trainable)

        if use_batch_statistics:
            mean, variance = self._batch_moments(inputs, mask)
            moving_mean = ops.cast(self.moving_mean, dtype)
            moving_variance = ops.cast(self.moving_variance, dtype)
            self.moving_mean.assign(
                moving_mean * self.momentum + mean * (1.0 - self.momentum)
            )
            self.moving_variance.assign(
                moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
            self.last_batch_mean = mean
            self.last_batch_variance = variance
        else:
            mean = ops.cast(self.moving_mean, dtype)
            variance = ops.cast(self.moving_variance, dtype)
            self.last_batch_mean = None
            self.last_batch_variance = None
        self.last_training_mode = use_batch_statistics

        outputs = (inputs - self._broadcast(mean)) * ops.rsqrt(
            self._broadcast(variance) + self.epsilon
        )
        if self.scale:
            outputs = outputs * self._broadcast(ops.cast(self.gamma, dtype))
        if self.center:
            outputs = outputs + self._broadcast(ops.cast(self.beta, dtype))
        return ops.cast(outputs, self.compute_dtype)

    def _batch_moments(self, inputs, mask):
        """Per-channel mean and biased variance, over the unmasked positions."""
        axes = self._reduction_axes
        if mask is None:
            mean = ops.mean(inputs, axis=axes)
            centered = inputs - self._broadcast(mean)
            return mean, ops.mean(ops.square(centered), axis=axes)
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), self._channel_axis)
        weights = ops.broadcast_to(weights, ops.shape(inputs))
        # Keras' own guard: an all-masked batch gives zeros, not NaN.
        count = ops.sum(weights, axis=axes) + keras.backend.epsilon()
        mean = ops.sum(inputs * weights, axis=axes) / count
        centered = (inputs - self._broadcast(mean)) * weights
        return mean, ops.sum(ops.square(centered), axis=axes) / count

    def _broadcast(self, per_channel):
        """Reshapes a per-channel vector so that it broadcasts over `inputs`."""
        return ops.reshape(per_channel, self._broadcast_shape)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = {
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(
                self.moving_mean_initializer
            ),
            "moving_variance_initializer": initializers.serialize(
                self.moving_variance_initializer
            ),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }
        return {**super().get_config(), **config}
