"""The run metadata built from a live model, as the callback writes it."""

from __future__ import annotations

import keras

from bnscope import schema
from bnscope.recording import run_metadata
from bnscope.recording.hooks import LayerHooks
from bnscope.recording.probe import Probe
from tests.support import models


def test_built_from_the_probe_trace():
    keras.backend.clear_session()
    model = models.compiled(models.functional)
    x, y = models.data()
    probe = Probe(model, LayerHooks(model))
    probe(x[:16], y[:16])
    metadata = run_metadata.build(
        model,
        probe.info,
        training_modes={"bn": True},
        requested_training={},
        batch_size=16,
        config={"every_n_steps": 2},
        steps_per_epoch=4,
        epochs=2,
    )
    assert isinstance(metadata, schema.RunMetadata)
    assert [layer.name for layer in metadata.layers] == ["hidden", "bn", "probs"]
    assert [layer.depth for layer in metadata.layers] == [0, 1, 2]
    bn = metadata.layer("bn")
    assert bn.is_batch_norm and bn.normalization.training_mode is True
    assert bn.normalization.requested_training is None
    assert bn.inputs_from == ("hidden",)
    assert metadata.batch_size == 16 and metadata.replicas == 1
    assert metadata.steps_per_epoch == 4 and metadata.epochs == 2
    assert metadata.optimizer.class_name == type(model.optimizer).__name__
    assert metadata.optimizer.learning_rate is not None
    assert metadata.model.name == model.name and metadata.model.params > 0
    assert metadata.versions["keras"] == keras.__version__
    # Each output: the layer and activation producing it, its loss and targets.
    (output,) = metadata.outputs
    assert (output.layer, output.activation, output.units) == ("probs", "softmax", 3)
    assert (output.loss, output.from_logits) == (
        "sparse_categorical_crossentropy",
        False,
    )
    assert output.target_dtype == str(y.dtype) and output.target_shape == (16,)
    # Layer input shapes (the BN axis rule reads them).
    assert bn.input_shape == (16, 16) and metadata.layer("hidden").input_shape == (
        16,
        8,
    )
    assert bn.data_format is None
    # What is written is what is read back.
    assert schema.RunMetadata.loads(metadata.dumps()) == metadata
