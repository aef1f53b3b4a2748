"""Markdown for TensorBoard's Text dashboard, built from typed run data."""

from __future__ import annotations

from bnscope.schema import RunMetadata


def layers_markdown(metadata: RunMetadata) -> str:
    """The layer list as a markdown table, in depth order."""
    rows = [
        "| depth | layer | class | activation | params | normalization |",
        "|---|---|---|---|---|---|",
    ]
    for layer in metadata.layers:
        rows.append(
            f"| {layer.depth} | {layer.name} | {layer.class_name or ''} | "
            f"{layer.activation or ''} | {layer.params if layer.params is not None else ''} | "
            f"{layer.normalization_kind or ''} |"
        )
    return "\n".join(rows)
