"""The run metadata: typed on both sides, lenient when read back."""

from __future__ import annotations

import json

from bnscope import schema
from bnscope.schema import (
    InputMeta,
    LayerMeta,
    ModelMeta,
    NormalizationMeta,
    OptimizerMeta,
    OutputMeta,
    RunMetadata,
)

FULL = RunMetadata(
    versions={"bnscope": "0.1.0", "tensorflow": "2.21.0"},
    model=ModelMeta("mlp", "Sequential", 1234),
    batch_size=32,
    replicas=1,
    steps_per_epoch=50,
    epochs=3,
    optimizer=OptimizerMeta("Adam", 0.001),
    config={"every_n_steps": None},
    inputs=(InputMeta("pixels", "uint8"),),
    outputs=(
        OutputMeta(
            "output",
            True,
            layer="bn",
            activation="softmax",
            shape=(None, 10),
            loss="sparse_categorical_crossentropy",
            from_logits=False,
            target_dtype="int64",
            target_shape=(None,),
        ),
    ),
    layers=(
        LayerMeta(
            "dense",
            0,
            "Dense",
            "linear",
            100,
            True,
            False,
            (),
            input_shape=(None, 28, 28, 3),
            data_format="channels_last",
        ),
        LayerMeta(
            "bn",
            1,
            "BatchNormalization",
            None,
            4,
            True,
            None,
            ("dense",),
            NormalizationMeta("batch", (-1,), 1e-3, True, True, 0.99, 10, True, False),
        ),
    ),
    gradients_skipped=None,
)


def test_round_trip_through_json_text():
    assert RunMetadata.loads(FULL.dumps()) == FULL


def test_json_keys_are_the_documented_ones():
    data = FULL.to_json()
    assert data["model"] == {"name": "mlp", "class": "Sequential", "params": 1234}
    layer = data["layers"][1]
    assert layer["class"] == "BatchNormalization"
    assert layer["inputs_from"] == ["dense"]
    assert layer["normalization"]["training_mode"] is True
    assert layer["normalization"]["axis"] == [-1]
    assert json.loads(json.dumps(data)) == data


def test_wrong_types_are_dropped_field_by_field_with_a_note():
    data = FULL.to_json()
    data["batch_size"] = "thirty-two"
    data["layers"][0]["inputs_from"] = 5
    data["layers"][1]["normalization"]["momentum"] = [0.9]
    notes: list[str] = []
    parsed = RunMetadata.from_json(data, notes)
    assert parsed.batch_size is None
    assert parsed.layers[0].inputs_from == ()
    assert parsed.layers[1].normalization.momentum is None
    assert parsed.layers[1].normalization.training_mode is True  # the rest is kept
    assert parsed.model == FULL.model
    assert len(notes) == 1 and "batch_size" in notes[0] and "inputs_from" in notes[0]


def test_records_without_their_key_field_are_dropped():
    data = FULL.to_json()
    data["layers"].append({"class": "Dense"})  # no name
    data["layers"].append("not a layer")
    notes: list[str] = []
    parsed = RunMetadata.from_json(data, notes)
    assert [layer.name for layer in parsed.layers] == ["dense", "bn"]
    assert "dropped" in notes[0]


def test_layers_are_put_in_depth_order_and_missing_depths_keep_list_order():
    data = {"layers": [{"name": "b", "depth": 1}, {"name": "a", "depth": 0}]}
    assert [layer.name for layer in RunMetadata.from_json(data).layers] == ["a", "b"]
    undated = {"layers": [{"name": "x"}, {"name": "y"}]}
    parsed = RunMetadata.from_json(undated)
    assert [(layer.name, layer.depth) for layer in parsed.layers] == [
        ("x", 0),
        ("y", 1),
    ]


def test_not_json_or_not_an_object_is_none_with_a_note():
    notes: list[str] = []
    assert RunMetadata.loads("{not json", notes) is None
    assert "not valid JSON" in notes[0]
    assert RunMetadata.from_json([1, 2]) is None


def test_unknown_fields_from_a_newer_writer_are_ignored():
    data = FULL.to_json()
    data["something_new"] = {"x": 1}
    data["layers"][0]["future_field"] = True
    assert RunMetadata.from_json(data) == FULL


def test_bool_is_not_taken_for_an_integer():
    parsed = RunMetadata.from_json({"batch_size": True, "replicas": 2})
    assert parsed.batch_size is None and parsed.replicas == 2


def test_layer_helpers():
    bn = FULL.layer("bn")
    assert bn.is_batch_norm and bn.normalization_kind == schema.BATCH
    assert not FULL.layer("dense").is_batch_norm
    assert FULL.layer("missing") is None


def test_output_and_shape_fields():
    data = FULL.to_json()
    assert data["outputs"][0]["shape"] == [None, 10]
    assert data["layers"][0]["input_shape"] == [None, 28, 28, 3]
    output = FULL.output("output")
    assert output.units == 10 and output.loss == "sparse_categorical_crossentropy"
    assert OutputMeta("flat", shape=(None,)).units == 1
    assert OutputMeta("unknown").units is None
    assert FULL.output("missing") is None


def test_malformed_shapes_are_dropped():
    data = FULL.to_json()
    data["layers"][0]["input_shape"] = [None, "28"]
    data["outputs"][0]["shape"] = [True, 10]
    notes: list[str] = []
    parsed = RunMetadata.from_json(data, notes)
    assert parsed.layers[0].input_shape is None
    assert parsed.outputs[0].shape is None
    assert parsed.outputs[0].loss == "sparse_categorical_crossentropy"
