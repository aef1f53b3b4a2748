"""The public contract the tests hold bnscope to (docs/findings.md, docs/cli.md)."""

# Rule ids that existed from the first release: never renamed.
PUBLIC_RULE_IDS = frozenset(
    {
        "vanishing_gradient",
        "exploding_gradient",
        "dead_relu",
        "saturation",
        "bn_stat_drift",
        "bn_train_inference_gap",
        "small_batch_bn",
        "nonfinite",
        "unnormalized_input",
    }
)
# The keys of one finding in JSON version 1; more may be added, none removed.
JSON_V1_FINDING_KEYS = frozenset(
    {
        "rule",
        "severity",
        "layer",
        "step",
        "last_step",
        "value",
        "threshold",
        "message",
        "hint",
    }
)
