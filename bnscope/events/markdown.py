"""Markdown for TensorBoard's Text dashboard, built from typed run data.

`layers_markdown` writes the `bnscope/layers` table; `parse_layers_markdown`
reads it back, for logs whose `bnscope/metadata` record a reader cannot see
(TensorBoard's data provider before bnscope set its data class).
"""

from __future__ import annotations

from bnscope.schema import LayerMeta, NormalizationMeta, RunMetadata

_HEADER = ("depth", "layer", "class", "activation", "params", "normalization")


def layers_markdown(metadata: RunMetadata) -> str:
    """The layer list as a markdown table, in depth order."""
    rows = [
        "| " + " | ".join(_HEADER) + " |",
        "|---|---|---|---|---|---|",
    ]
    for layer in metadata.layers:
        rows.append(
            f"| {layer.depth} | {layer.name} | {layer.class_name or ''} | "
            f"{layer.activation or ''} | {layer.params if layer.params is not None else ''} | "
            f"{layer.normalization_kind or ''} |"
        )
    return "\n".join(rows)


def parse_layers_markdown(text: str) -> tuple[LayerMeta, ...]:
    """The layers of a `layers_markdown` table, in depth order.

    Only what the table holds comes back: name, depth, class, activation,
    params and normalization kind (no wiring, batch size or BN mode). Lines
    that are not layer rows (the header, the rule, anything else) are skipped.

    Args:
        text: The `bnscope/layers` text.

    Example:

    ```python
    layers = parse_layers_markdown(layers_markdown(metadata))
    assert [layer.name for layer in layers] == [layer.name for layer in metadata.layers]
    ```
    """
    layers = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != len(_HEADER) or not cells[0].isdigit():
            continue
        depth, name, class_name, activation, params, kind = cells
        if not name:
            continue
        layers.append(
            LayerMeta(
                name=name,
                depth=int(depth),
                class_name=class_name or None,
                activation=activation or None,
                params=int(params) if params.isdigit() else None,
                normalization=NormalizationMeta(kind=kind) if kind else None,
            )
        )
    return tuple(sorted(layers, key=lambda layer: layer.depth))
