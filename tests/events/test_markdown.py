"""The layer table for TensorBoard's Text dashboard."""

from bnscope.analysis.rules import Finding
from bnscope.events.markdown import FINDINGS_COLUMNS, findings_markdown, layers_markdown
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


def finding(severity="warning", rule="dead_relu", layer="relu", message="m", hint="h"):
    return Finding(rule, severity, layer, 120, 900, 0.8, 0.5, message, hint)


def test_findings_summary_line_then_one_row_each():
    text = findings_markdown(
        [
            Finding("nonfinite", "error", None, 7, 9, None, 0.0, "NaN at 7", "clip"),
            finding(message="80% | dead", hint="lower the\nlearning rate"),
        ],
        900,
    )
    lines = text.splitlines()
    assert lines[0] == "**bnscope findings at step 900**: 1 errors, 1 warnings, 0 infos"
    assert lines[1] == ""
    assert lines[2] == "| " + " | ".join(FINDINGS_COLUMNS) + " |"
    assert lines[2].startswith("| severity | rule | layer | first step | last step |")
    assert lines[3] == "|---|---|---|---|---|---|---|---|---|"
    assert lines[4] == "| error | nonfinite |  | 7 | 9 |  | 0 | NaN at 7 | clip |"
    # A pipe or newline inside a cell would break the table.
    assert lines[5] == (
        "| warning | dead_relu | relu | 120 | 900 | 0.8 | 0.5 | 80% \\| dead | "
        "lower the learning rate |"
    )
    assert len(lines) == 6


def test_no_findings_and_a_stopped_run():
    assert findings_markdown([], 40) == (
        "**bnscope findings at step 40**: 0 errors, 0 warnings, 0 infos\n\nNo findings."
    )
    text = findings_markdown([finding("error")], 40, "at step 40: dead_relu in relu")
    assert text.splitlines()[2] == "Training stopped at step 40: dead_relu in relu"
