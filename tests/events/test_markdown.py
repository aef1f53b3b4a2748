"""The layer table for TensorBoard's Text dashboard."""

from bnscope.events.markdown import layers_markdown
from bnscope.schema import LayerMeta, NormalizationMeta, RunMetadata


def test_one_row_per_layer_in_depth_order():
    metadata = RunMetadata(
        layers=(
            LayerMeta("dense", 0, "Dense", "linear", 640),
            LayerMeta(
                "bn",
                1,
                "BatchNormalization",
                None,
                40,
                normalization=NormalizationMeta("batch"),
            ),
        )
    )
    lines = layers_markdown(metadata).splitlines()
    assert lines[0].startswith("| depth | layer | class |")
    assert lines[2] == "| 0 | dense | Dense | linear | 640 |  |"
    assert lines[3] == "| 1 | bn | BatchNormalization |  | 40 | batch |"
    assert len(lines) == 4


def test_unknown_fields_are_blank():
    lines = layers_markdown(RunMetadata(layers=(LayerMeta("x", 0),))).splitlines()
    assert lines[2] == "| 0 | x |  |  |  |  |"
