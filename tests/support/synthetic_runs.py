"""Synthetic bnscope runs, healthy and sick, written with the real event writer.

Tests that need a run on disk without training a model build one here. The
layout follows what the `BNScope` callback writes (see docs/tags.md): the
metadata once at the first probe, then one `Summary` of scalars per probe,
with an activation histogram every few probes.

Example:

```python
from tests.support.synthetic_runs import SICK_RUNS, mlp_bn

mlp_bn().write(tmp_path / "logs" / "bnscope")            # stays quiet
SICK_RUNS["dead_relu"]().write(tmp_path / "sick" / "bnscope")
```
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bnscope import schema, tags
from bnscope.events.writer import (
    EventFileWriter,
    histogram_value,
    metadata_summary,
    scalars_summary,
)

DEFAULT_STEPS = tuple(range(0, 1001, 50))


@dataclass
class SyntheticLayer:
    """One layer of a synthetic model, as the metadata describes it."""

    name: str
    class_name: str
    activation: str | None = None
    params: int = 0
    trainable: bool = True
    use_bias: bool | None = None
    inputs_from: tuple[str, ...] = ()
    normalization: dict[str, Any] | None = None
    variables: tuple[str, ...] = ()
    input_shape: tuple[int | None, ...] | None = None
    data_format: str | None = None
    reads_inputs: tuple[str, ...] = ()
    reads_ops: tuple[str, ...] = ()
    reads_ops_from: tuple[str, ...] = ()
    kernel_size: tuple[int, ...] = ()
    padding: str | None = None
    role: str | None = None

    def as_metadata(self, depth: int) -> schema.LayerMeta:
        normalization = self.normalization
        return schema.LayerMeta(
            name=self.name,
            depth=depth,
            class_name=self.class_name,
            activation=self.activation,
            params=self.params,
            trainable=self.trainable,
            use_bias=self.use_bias,
            inputs_from=tuple(self.inputs_from),
            normalization=(
                None
                if normalization is None
                else schema.NormalizationMeta(**normalization)
            ),
            input_shape=self.input_shape,
            data_format=self.data_format,
            reads_inputs=tuple(self.reads_inputs),
            reads_ops=tuple(self.reads_ops),
            reads_ops_from=tuple(self.reads_ops_from),
            kernel_size=tuple(self.kernel_size),
            padding=self.padding,
            role=self.role,
        )


def dense(name, inputs_from=(), activation="linear", units_in=32, units=64, bias=False):
    """A Dense layer; one that reads no layer reads the model input."""
    params = units_in * units + (units if bias else 0)
    variables = ("kernel", "bias") if bias else ("kernel",)
    return SyntheticLayer(
        name,
        "Dense",
        activation,
        params,
        True,
        bias,
        tuple(inputs_from),
        None,
        variables,
        reads_inputs=() if inputs_from else ("input_layer",),
    )


def batch_norm(name, inputs_from, channels=64, momentum=0.99, trainable=True):
    normalization = {
        "kind": "batch",
        "axis": (-1,),
        "momentum": momentum,
        "epsilon": 0.001,
        "center": True,
        "scale": True,
        "training_mode": trainable,
        "requested_training": True,
        "channels": channels,
    }
    return SyntheticLayer(
        name,
        "BatchNormalization",
        None,
        4 * channels,
        trainable,
        None,
        (inputs_from,),
        normalization,
        ("gamma", "beta") if trainable else (),
        (None, channels),
    )


def activation_layer(name, inputs_from, activation="relu"):
    class_name = "ReLU" if activation == "relu" else "Activation"
    return SyntheticLayer(name, class_name, activation, 0, True, None, (inputs_from,))


def dropout(name, inputs_from):
    return SyntheticLayer(name, "Dropout", None, 0, True, None, (inputs_from,))


@dataclass
class SyntheticRun:
    """A model's layers plus the value of every tag at every probe step.

    Values are set per tag as a constant, an array over the probe steps, or a
    function of training progress `t` in [0, 1]. `write` turns it into event
    files; `metadata()` is the JSON the callback would write.

    Args:
        layers: Layers in depth order.
        steps: Probe steps. Defaults to every 50 steps up to 1000.
        batch_size: Training batch size recorded in the metadata.
        model_name: Model name recorded in the metadata.
        seed: Seed of the small multiplicative noise on every series.
    """

    layers: list[SyntheticLayer]
    steps: tuple[int, ...] = DEFAULT_STEPS
    batch_size: int | None = 128
    model_name: str = "mlp_bn"
    seed: int = 0
    values: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: tuple[str, ...] = ("input_layer",)
    outputs: tuple[tuple[str, bool], ...] = (("output_0", True),)
    optimizer: tuple[str, float | None] = ("Adam", 0.001)
    input_dtype: str = "float32"
    # Probe index -> how the metadata of a later `fit` starting there differs.
    refits: dict[int, Callable[[schema.RunMetadata], schema.RunMetadata]] = field(
        default_factory=dict
    )
    # Output name -> more `schema.OutputMeta` fields (layer, activation, loss...).
    output_details: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def progress(self) -> np.ndarray:
        steps = np.asarray(self.steps, dtype=np.float64)
        return steps / max(steps[-1], 1.0)

    def set(self, metric: str, subject: str, value, noise: float = 0.0) -> SyntheticRun:
        """Sets `<metric>/<subject>`; `value` may be a constant, array or f(t)."""
        if callable(value):
            array = np.asarray(value(self.progress), dtype=np.float64)
        else:
            array = np.broadcast_to(np.asarray(value, np.float64), len(self.steps))
        array = np.array(array, dtype=np.float64)
        if noise:
            rng = np.random.default_rng(
                zlib.crc32(f"{self.seed}/{metric}/{subject}".encode())
            )
            array = array * np.exp(noise * rng.standard_normal(len(array)))
        self.values[f"{metric}/{subject}"] = array
        return self

    def set_late(self, metric: str, subject: str, value: float, start: float = 0.5):
        """Replaces `<metric>/<subject>` by `value` from progress `start` on."""
        tag = f"{metric}/{subject}"
        array = self.values.get(tag, np.zeros(len(self.steps))).copy()
        array[self.progress >= start] = value
        self.values[tag] = array
        return self

    def layer(self, name: str) -> SyntheticLayer:
        return next(layer for layer in self.layers if layer.name == name)

    def metadata(self) -> schema.RunMetadata:
        return schema.RunMetadata(
            versions={"bnscope": "0.1.0", "tensorflow": None, "keras": None},
            model=schema.ModelMeta(self.model_name, "Sequential", 0),
            batch_size=self.batch_size,
            steps_per_epoch=50,
            optimizer=schema.OptimizerMeta(*self.optimizer),
            config={"every_n_steps": 50, "histogram_every_n_probes": 5},
            inputs=tuple(
                schema.InputMeta(name, self.input_dtype) for name in self.inputs
            ),
            outputs=tuple(
                schema.OutputMeta(n, c, **self.output_details.get(n, {}))
                for n, c in self.outputs
            ),
            layers=tuple(layer.as_metadata(d) for d, layer in enumerate(self.layers)),
        )

    def probe_values(self, index: int) -> dict[str, float]:
        return {tag: float(array[index]) for tag, array in self.values.items()}

    def write(
        self,
        run_dir: str | os.PathLike,
        files: int = 1,
        histograms: bool = True,
        metadata: bool = True,
        metadata_text: str | None = None,
    ) -> list[str]:
        """Writes the run as event files in `run_dir` and returns their paths.

        Args:
            run_dir: The run directory (created if needed).
            files: Split the probes over this many event files, as a resumed
                training would. Defaults to `1`.
            histograms: Also write `act_hist` every 5 probes. Defaults to `True`.
            metadata: Write `bnscope/metadata` at the first probe. Defaults to
                `True`.
            metadata_text: Write this text as the metadata instead of the
                run's own (e.g. malformed JSON). Defaults to `None`.
        """
        run_dir = os.fspath(run_dir)
        chunks = np.array_split(np.arange(len(self.steps)), files)
        paths = []
        for number, chunk in enumerate(chunks):
            writer = EventFileWriter(run_dir)
            for index in chunk:
                step = self.steps[index]
                if metadata and index == 0:
                    summary = metadata_summary(self.metadata())
                    if metadata_text is not None:
                        summary.value[0].tensor.string_val[0] = metadata_text.encode()
                    writer.add_summary(summary, step)
                if metadata and index in self.refits:
                    refit = self.refits[index](self.metadata())
                    writer.add_summary(metadata_summary(refit), step)
                summary = scalars_summary(self.probe_values(index))
                if histograms and index % 5 == 0:
                    for layer in self.layers:
                        edges = np.linspace(-3, 3, 31)
                        counts = np.histogram(
                            np.random.default_rng(index).standard_normal(500), edges
                        )[0]
                        histogram_value(
                            summary, tags.ACT_HIST.tag(layer.name), edges, counts
                        )
                writer.add_summary(summary, step)
            writer.close()
            if writer.path:
                # Distinct, ordered timestamps in the names, as successive fits get.
                head, tail = writer.path.split("tfevents.", 1)
                stamped = f"{head}tfevents.{1_700_000_000 + number:010d}{tail[10:]}"
                os.replace(writer.path, stamped)
                paths.append(stamped)
        return paths


def _fill_healthy(run: SyntheticRun) -> SyntheticRun:
    """Sets every tag the callback writes to healthy, slowly varying values."""
    base_grad = {"Dense": 0.4, "BatchNormalization": 0.1}
    n_layers = len(run.layers)
    for depth, layer in enumerate(run.layers):
        name = layer.name
        run.set("act_mean", name, 0.1, noise=0.05)
        run.set("act_std", name, 1.0, noise=0.05)
        run.set("act_min", name, -2.5 if layer.activation != "relu" else 0.0)
        run.set("act_max", name, 3.0, noise=0.05)
        run.set("act_nonfinite", name, 0.0)
        zero = 0.5 if layer.activation == "relu" else 0.0
        run.set("act_zero_frac", name, zero, noise=0.02 if zero else 0.0)
        run.set("act_dead_frac", name, 0.02 if layer.activation == "relu" else 0.0)
        if layer.activation in ("sigmoid", "tanh", "softmax"):
            run.set("act_saturated_frac", name, 0.3 if depth == n_layers - 1 else 0.05)
        if layer.trainable and layer.variables:
            grad = base_grad.get(layer.class_name, 0.3) * (1.0 + depth / n_layers)
            run.set("grad_norm", name, lambda t, g=grad: g * (1.2 - 0.4 * t), 0.1)
            for variable in layer.variables:
                subject = tags.variable_subject(name, variable)
                run.set("grad_var_norm", subject, grad / len(layer.variables), 0.1)
            run.set("grad_nonfinite", name, 0.0)
            run.set("weight_norm", name, lambda t: 5.0 + t, 0.01)
            run.set("weight_nonfinite", name, 0.0)
            run.set("update_ratio", name, 1e-3, noise=0.1)
        if layer.normalization and layer.normalization.get("kind") == "batch":
            momentum = layer.normalization["momentum"]
            window = 1.0 / (1.0 - momentum)
            steps = np.asarray(run.steps, dtype=np.float64)
            run.set("bn_mean_shift", name, 0.05, noise=0.2)
            run.set("bn_mean_shift_max", name, 0.2, noise=0.2)
            run.set("bn_log_var_ratio", name, 0.05, noise=0.2)
            run.set("bn_log_var_ratio_max", name, 0.2, noise=0.2)
            run.set("bn_moving_change", name, lambda t: 0.02 * (1.1 - t), 0.1)
            run.set("bn_training_mode", name, 1.0 if layer.trainable else 0.0)
            if layer.trainable:
                run.set("bn_ema_progress", name, steps / window)
            run.set("bn_gap", name, 0.08, noise=0.2)
            run.set("gamma_mean", name, 1.0, noise=0.01)
            run.set("gamma_std", name, 0.05, noise=0.01)
            run.set("beta_mean", name, 0.0)
            run.set("beta_std", name, 0.05, noise=0.01)
    run.set("loss", "model", lambda t: 0.3 + 2.0 * np.exp(-4 * t), 0.03)
    run.set("loss_nonfinite", "model", 0.0)
    run.set("grad_global_norm", "model", lambda t: 1.0 - 0.3 * t, 0.1)
    for name in run.inputs:
        run.set("input_mean", name, 0.0, noise=0.0)
        run.set("input_std", name, 1.0, noise=0.02)
        run.set("input_min", name, -3.5)
        run.set("input_max", name, 3.5)
    for name, classifier in run.outputs:
        run.set("gap_rel_l2", name, 0.05, noise=0.2)
        if classifier:
            run.set("gap_argmax_agreement", name, 0.98)
    return run


def classifier_output(run: SyntheticRun, layer: str, classes: int = 10) -> None:
    """Makes the run's output a softmax classifier on class ids (healthy).

    Sets its metadata (sparse categorical cross-entropy, `classes` units) and
    the target and prediction statistics of a shuffled batch of class ids.
    """
    name = run.outputs[0][0]
    batch = run.batch_size or 128
    run.output_details[name] = {
        "layer": layer,
        "activation": "softmax",
        "shape": (batch, classes),
        "loss": "sparse_categorical_crossentropy",
        "from_logits": False,
        "target_dtype": "int64",
        "target_shape": (batch,),
    }
    set_targets(run, 0.0, classes - 1.0, (classes - 1) / 2, 2.87, classes, True)
    run.set("output_mean", name, 1.0 / classes)
    run.set("output_min", name, 1e-3, noise=0.1)
    run.set("output_max", name, lambda t: 0.5 + 0.45 * t)
    run.set("output_spread", name, lambda t: 0.1 + 0.2 * t, noise=0.05)


def set_targets(run, low, high, mean, std, distinct, integral, output=None) -> None:
    """Sets the `target_*` statistics of an output (default: the first)."""
    name = output or run.outputs[0][0]
    # The probe batch is the same at every probe of a fit: no noise.
    for metric, value in (
        ("target_min", low),
        ("target_max", high),
        ("target_mean", mean),
        ("target_std", std),
        ("target_distinct", min(distinct, 64)),
        ("target_integral", float(integral)),
    ):
        run.set(metric, name, value)


def mlp_bn(
    batch_size: int | None = 128,
    hidden_activation: str = "relu",
    bias_before_bn: bool = False,
    dropout_before_bn: bool = False,
    momentum: float = 0.99,
    steps: Iterable[int] = DEFAULT_STEPS,
    names: tuple[str, ...] | None = None,
) -> SyntheticRun:
    """A healthy MLP: Dense → BN → activation, twice, then a softmax classifier.

    Args:
        batch_size: Recorded training batch size. Defaults to `128`.
        hidden_activation: Activation after each BN. Defaults to `"relu"`.
        bias_before_bn: Give the Dense layers before BN a bias. Defaults to
            `False` (the recommended `use_bias=False`).
        dropout_before_bn: Put the Dropout between the second Dense and its BN
            instead of before the classifier. Defaults to `False`.
        momentum: BN momentum. Defaults to `0.99`.
        steps: Probe steps. Defaults to every 50 steps up to 1000.
        names: Override the 8 layer names (e.g. unicode ones).
    """
    n = names or (
        "dense",
        "batch_normalization",
        "activation",
        "dense_1",
        "batch_normalization_1",
        "activation_1",
        "dropout",
        "dense_2",
    )
    first = dense(n[0], (), bias=bias_before_bn)
    second = dense(n[3], (n[2],), units_in=64, bias=bias_before_bn)
    layers = [
        first,
        batch_norm(n[1], n[0], momentum=momentum),
        activation_layer(n[2], n[1], hidden_activation),
        second,
    ]
    if dropout_before_bn:
        layers += [
            dropout(n[6], n[3]),
            batch_norm(n[4], n[6], momentum=momentum),
            activation_layer(n[5], n[4], hidden_activation),
            dense(n[7], (n[5],), "softmax", 64, 10, bias=True),
        ]
    else:
        layers += [
            batch_norm(n[4], n[3], momentum=momentum),
            activation_layer(n[5], n[4], hidden_activation),
            dropout(n[6], n[5]),
            dense(n[7], (n[6],), "softmax", 64, 10, bias=True),
        ]
    run = SyntheticRun(layers=layers, steps=tuple(steps), batch_size=batch_size)
    _fill_healthy(run)
    classifier_output(run, n[7])
    if bias_before_bn:
        # The structural zero: BN subtracts the batch mean, bias included.
        for layer in (first, second):
            run.set("grad_var_norm", tags.variable_subject(layer.name, "bias"), 0.0)
    return run


def plain_mlp(depth: int = 6, activation: str = "sigmoid") -> SyntheticRun:
    """A deep MLP without normalization whose early gradients vanish."""
    layers = []
    previous: tuple[str, ...] = ()
    for index in range(depth):
        name = "dense" if index == 0 else f"dense_{index}"
        last = index == depth - 1
        layers.append(
            dense(name, previous, "softmax" if last else activation, 64, 64, bias=True)
        )
        previous = (name,)
    run = SyntheticRun(layers=layers, model_name="mlp_plain")
    _fill_healthy(run)
    classifier_output(run, layers[-1].name)
    for index, layer in enumerate(layers):
        # Each sigmoid layer scales the backward signal by at most 1/4.
        grad = 0.5 * 10.0 ** (-1.2 * (depth - 1 - index))
        run.set("grad_norm", layer.name, grad, noise=0.1)
        for variable in layer.variables:
            subject = tags.variable_subject(layer.name, variable)
            run.set("grad_var_norm", subject, grad / 2, noise=0.1)
    return run


# -- Sick runs: one per rule id, each the healthy MLP with one thing wrong -------


def _vanishing() -> SyntheticRun:
    return plain_mlp()


def _exploding() -> SyntheticRun:
    run = mlp_bn()
    run.set_late("grad_norm", "dense", 150.0, start=0.4)
    return run


def _dead_relu() -> SyntheticRun:
    run = mlp_bn()
    run.set_late("act_dead_frac", "activation", 0.8, start=0.4)
    run.set_late("act_zero_frac", "activation", 0.9, start=0.4)
    return run


def _saturation() -> SyntheticRun:
    run = mlp_bn(hidden_activation="tanh")
    run.set_late("act_saturated_frac", "activation_1", 0.85, start=0.3)
    return run


def _bn_stat_drift() -> SyntheticRun:
    run = mlp_bn()
    run.set_late("bn_mean_shift", "batch_normalization_1", 1.6, start=0.5)
    return run


def _frozen_bn_drift() -> SyntheticRun:
    run = mlp_bn()
    layer = run.layer("batch_normalization")
    layer.trainable = False
    layer.normalization["training_mode"] = False
    run.set("bn_training_mode", "batch_normalization", 0.0)
    run.set("bn_moving_change", "batch_normalization", 0.0)
    run.values.pop("bn_ema_progress/batch_normalization")
    run.set("bn_log_var_ratio", "batch_normalization", 1.4, noise=0.05)
    return run


def _bn_gap() -> SyntheticRun:
    run = mlp_bn()
    run.set_late("bn_gap", "batch_normalization_1", 0.9, start=0.5)
    run.set_late("gap_argmax_agreement", "output_0", 0.6, start=0.5)
    return run


def _small_batch() -> SyntheticRun:
    return mlp_bn(batch_size=4)


def _nonfinite() -> SyntheticRun:
    run = mlp_bn()
    run.set_late("grad_nonfinite", "dense_1", 64.0, start=0.6)
    run.set_late("grad_norm", "dense_1", float("nan"), start=0.6)
    run.set_late("grad_nonfinite", "dense_2", 650.0, start=0.65)
    run.set_late("loss_nonfinite", "model", 1.0, start=0.65)
    run.set_late("loss", "model", float("nan"), start=0.65)
    return run


def _unnormalized_input() -> SyntheticRun:
    # Raw pixels into a model whose first Dense has a ReLU (no BN right after
    # it to divide the scale out again).
    run = mlp_bn()
    run.layers[0] = dense("dense", (), activation="relu")
    run.layers[1].inputs_from = ("dense",)
    _fill_healthy(run)
    run.set("input_mean", "input_layer", 120.0, noise=0.02)
    run.set("input_std", "input_layer", 70.0, noise=0.02)
    run.set("input_min", "input_layer", 0.0)
    run.set("input_max", "input_layer", 255.0)
    # Raw pixel values scale the first layer's gradient by the same factor.
    run.set("grad_norm", "dense", 60.0, noise=0.1)
    return run


def _bias_before_bn() -> SyntheticRun:
    return mlp_bn(bias_before_bn=True)


def _dropout_before_bn() -> SyntheticRun:
    return mlp_bn(dropout_before_bn=True)


def _bn_mode_override() -> SyntheticRun:
    run = mlp_bn()
    run.layer("batch_normalization")  # still honoured
    override = run.layer("batch_normalization_1")
    override.normalization["requested_training"] = False
    override.normalization["training_mode"] = True
    return run


def _bn_ema_not_converged() -> SyntheticRun:
    return mlp_bn(momentum=0.999)


def _not_learning() -> SyntheticRun:
    run = mlp_bn()
    run.set("loss", "model", 2.3026, noise=0.001)  # ln(10), chance, throughout
    return run


def _learning_rate() -> SyntheticRun:
    # SGD at 1e-6: weights move ~1e-7 of their norm per 50-step interval.
    run = _not_learning()
    run.optimizer = ("SGD", 1e-6)
    for layer in run.layers:
        if layer.variables:
            run.set("update_ratio", layer.name, 5e-7, noise=0.1)
    return run


def _exploding_activation() -> SyntheticRun:
    # A deep ReLU stack initialized far too large: each layer multiplies the
    # scale by ~10 (the depth ratio of gradients stays near 1).
    run = plain_mlp(depth=6, activation="relu")
    for index, layer in enumerate(run.layers):
        run.set("act_std", layer.name, 2.0 * 10.0**index, noise=0.05)
        run.set("act_max", layer.name, 8.0 * 10.0**index, noise=0.05)
        run.set("grad_norm", layer.name, 3e5, noise=0.1)
    run.set("loss", "model", 4e5, noise=0.2)
    run.set("grad_global_norm", "model", 1e6, noise=0.1)
    return run


def fine_tuning(split: int = 10) -> SyntheticRun:
    """The Keras fine-tuning recipe in two fits of one run.

    Fit 1 (probes before `split`) trains a head on a frozen base whose BN
    statistics do not describe the new data; fit 2 unfreezes the base, calls
    it with `training=False`, and Keras 3 overrides that (its BN layers run in
    training mode and their moving statistics move).
    """
    run = mlp_bn()
    bn_names = ("batch_normalization", "batch_normalization_1")
    frozen = np.asarray(run.steps) < run.steps[split]
    for name in bn_names:
        layer = run.layer(name)
        layer.trainable = False
        layer.normalization["training_mode"] = False
        layer.normalization["requested_training"] = False
        run.set("bn_log_var_ratio", name, np.where(frozen, 1.4, 0.05), noise=0.05)
        run.set("bn_moving_change", name, np.where(frozen, 0.0, 0.01))
        run.set("bn_training_mode", name, np.where(frozen, 0.0, 1.0))
        # EMA progress counts the steps since BN started learning, in fit 2.
        progress = (np.asarray(run.steps) - run.steps[split]) / 100.0
        run.set("bn_ema_progress", name, np.where(frozen, 0.0, progress + 10.0))

    def unfrozen(metadata: schema.RunMetadata) -> schema.RunMetadata:
        layers = []
        for layer in metadata.layers:
            if layer.name in bn_names:
                normalization = dataclasses.replace(
                    layer.normalization, training_mode=True
                )
                layer = dataclasses.replace(
                    layer, trainable=True, normalization=normalization
                )
            layers.append(layer)
        return dataclasses.replace(
            metadata,
            layers=tuple(layers),
            optimizer=schema.OptimizerMeta("Adam", 1e-5),
        )

    run.refits[split] = unfrozen
    return run


def _single_unit_output(activation: str, loss: str) -> SyntheticRun:
    """The healthy MLP with a one-unit output under `loss` (targets 0/1)."""
    run = mlp_bn()
    details = run.output_details["output_0"]
    details.update(activation=activation, shape=(128, 1), loss=loss)
    details.update(target_dtype="float32", target_shape=(128,))
    set_targets(run, 0.0, 1.0, 0.45, 0.5, 2, True)
    run.outputs = (("output_0", False),)
    run.values.pop("gap_argmax_agreement/output_0")
    return run


def _output_loss_mismatch() -> SyntheticRun:
    return _single_unit_output("softmax", "binary_crossentropy")


def _constant_output() -> SyntheticRun:
    # Keras trains the cached logit: the loss falls, every prediction is 1.0.
    run = _single_unit_output("softmax", "binary_crossentropy")
    for metric in ("output_mean", "output_min", "output_max"):
        run.set(metric, "output_0", 1.0)
    run.set("output_spread", "output_0", 0.0)
    run.set("act_min", "dense_2", 1.0)
    run.set("act_max", "dense_2", 1.0)
    return run


def _target_loss_mismatch() -> SyntheticRun:
    # Class ids 0-9 under binary cross-entropy on one sigmoid unit.
    run = _single_unit_output("sigmoid", "binary_crossentropy")
    set_targets(run, 0.0, 9.0, 4.5, 2.87, 10, True)
    return run


def _regression_output(run: SyntheticRun) -> SyntheticRun:
    details = run.output_details["output_0"]
    details.update(activation="linear", shape=(128, 1), loss="mean_squared_error")
    details.update(target_dtype="float32", target_shape=(128, 1), from_logits=None)
    run.outputs = (("output_0", False),)
    run.values.pop("gap_argmax_agreement/output_0")
    run.set("output_mean", "output_0", 0.2, noise=0.1)
    run.set("output_min", "output_0", -2.5, noise=0.1)
    run.set("output_max", "output_0", 3.0, noise=0.1)
    run.set("output_spread", "output_0", 1.1, noise=0.1)
    return run


def _unscaled_target() -> SyntheticRun:
    # House prices in dollars, predicted by an untrained linear output.
    run = _regression_output(mlp_bn())
    set_targets(run, 5.0e4, 5.0e5, 2.4e5, 1.1e5, 64, False)
    return run


def _constant_target() -> SyntheticRun:
    run = _regression_output(mlp_bn())
    set_targets(run, 3.5, 3.5, 3.5, 0.0, 1, False)
    return run


def _bn_axis() -> SyntheticRun:
    # BatchNormalization(axis=1) on (batch, steps, channels) sequences.
    run = mlp_bn()
    layer = run.layer("batch_normalization")
    layer.input_shape = (None, 16, 64)
    layer.normalization["axis"] = (1,)
    return run


SICK_RUNS: dict[str, Callable[[], SyntheticRun]] = {
    "vanishing_gradient": _vanishing,
    "exploding_gradient": _exploding,
    "dead_relu": _dead_relu,
    "saturation": _saturation,
    "bn_stat_drift": _bn_stat_drift,
    "bn_train_inference_gap": _bn_gap,
    "small_batch_bn": _small_batch,
    "nonfinite": _nonfinite,
    "unnormalized_input": _unnormalized_input,
    "bias_before_bn": _bias_before_bn,
    "dropout_before_bn": _dropout_before_bn,
    "bn_mode_override": _bn_mode_override,
    "bn_ema_not_converged": _bn_ema_not_converged,
    "not_learning": _not_learning,
    "learning_rate": _learning_rate,
    "exploding_activation": _exploding_activation,
    "output_loss_mismatch": _output_loss_mismatch,
    "target_loss_mismatch": _target_loss_mismatch,
    "constant_output": _constant_output,
    "unscaled_target": _unscaled_target,
    "constant_target": _constant_target,
    "bn_axis": _bn_axis,
}
"""Rule id → a run on which that rule (at least) must fire."""

frozen_bn_drift = _frozen_bn_drift


def write_tensorboard_only(run_dir: str | os.PathLike, steps: int = 20) -> str:
    """Writes a Keras-`TensorBoard`-like run with no bnscope tags."""
    writer = EventFileWriter(os.fspath(run_dir))
    for step in range(steps):
        writer.add_summary(
            scalars_summary({"epoch_loss": 1.0 / (step + 1), "epoch_accuracy": 0.5}),
            step,
        )
    writer.close()
    return writer.path


def deep_run(n_layers: int, probes: int, sick: bool) -> SyntheticRun:
    """(Conv, BN, ReLU) blocks and a softmax head; trouble planted if `sick`."""
    layers = []
    previous: tuple[str, ...] = ()
    block = 0
    while len(layers) < n_layers - 1:
        conv, bn, act = f"conv_{block}", f"bn_{block}", f"relu_{block}"
        layers.append(dense(conv, previous, "linear", 64, 64, bias=False))
        layers[-1].class_name = "Conv2D"
        layers.append(batch_norm(bn, conv))
        layers.append(activation_layer(act, bn, "relu"))
        previous = (act,)
        block += 1
    layers = layers[: n_layers - 1]
    layers.append(dense("head", (layers[-1].name,), "softmax", 64, 10, bias=True))
    steps = tuple(int(s) for s in np.linspace(0, 20 * (probes - 1), probes))
    run = SyntheticRun(layers=layers, steps=steps, model_name="deep")
    _fill_healthy(run)
    if sick:
        relus = [layer.name for layer in layers if layer.activation == "relu"]
        for name in relus[len(relus) // 2 : len(relus) // 2 + 5]:
            run.set_late("act_dead_frac", name, 0.85, start=0.4)
        bns = [
            layer.name for layer in layers if layer.class_name == "BatchNormalization"
        ]
        run.set_late("bn_mean_shift", bns[len(bns) // 3], 1.8, start=0.5)
        run.set_late("bn_gap", bns[len(bns) // 2], 0.9, start=0.5)
    return run
