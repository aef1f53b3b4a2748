"""False alarms on stock architectures: train each briefly with `BNScope()`.

Trains `keras.applications` models (weights=None) and a keras.io Transformer
encoder block for a few steps on real data (scikit-learn's digits, upscaled to
small RGB images or read as token sequences), with `BNScope()` at its
defaults, then prints every finding bnscope reports. A healthy stock model
should get no warning; the one warning allowed is an honest
`bn_ema_not_converged` (a few steps are far fewer than BN's EMA window of 100
steps, so the moving statistics really are unconverged).

Each model trains in its own process (memory is returned between models);
the logs are kept, so `--analyse-only LOGDIR` re-reads them without training.
Compiling these models is slow on 2 CPU cores (ConvNeXtTiny's first step takes
minutes): the script prints each model's training CPU time.

Usage:
    python benchmarks/false_alarms.py [--quick] [--models ...] [--logdir DIR]
    python benchmarks/false_alarms.py --analyse-only DIR [--verbose]

Exit code 0 when every finding is allowed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

BATCH = 16
IMAGE = 32  # the smallest size every application accepts
STEPS_PER_EPOCH = 10
EPOCHS = 3
QUICK_MODEL = "transformer_block"
# The only warning-level finding a healthy stock model may get after a few
# steps: its BN moving statistics have seen < 1 EMA window, which is true.
ALLOWED_WARNINGS = {"bn_ema_not_converged"}

# name -> (keras.applications attribute, preprocessing done by the user, or
# None when the model rescales its own input; dtype fed). Models that rescale
# their own input get raw 0-255 pixels, as float (MobileNetV3's and
# ConvNeXt's idioms of the false alarms) or as uint8 images straight from a
# decoder (EfficientNet).
APPLICATIONS = {
    "MobileNetV2": ("MobileNetV2", "mobilenet_v2", "float32"),
    "MobileNetV3Small": ("MobileNetV3Small", None, "float32"),
    "ResNet50": ("ResNet50", "resnet50", "float32"),
    "EfficientNetB0": ("EfficientNetB0", None, "uint8"),
    "DenseNet121": ("DenseNet121", "densenet", "float32"),
    "ConvNeXtTiny": ("ConvNeXtTiny", None, "float32"),
}
MODELS = (*APPLICATIONS, "transformer_block")


def digits_images(samples: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Digits as `(samples, 32, 32, 3)` pixel intensities 0-255, and labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images[:samples] / 16.0 * 255.0  # 0-16 -> 0-255
    images = np.kron(images, np.ones((IMAGE // 8, IMAGE // 8)))  # 8x8 -> 32x32
    rgb = np.repeat(images[..., None], 3, axis=-1)
    return rgb.astype(dtype), bunch.target[:samples].astype("int32")


def digits_tokens(samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits as sequences of 64 pixel tokens (values 0-16), and labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    tokens = bunch.images[:samples].reshape(samples, 64).astype("int32")
    return tokens, bunch.target[:samples].astype("int32")


def transformer_block(vocab: int = 17, maxlen: int = 64, classes: int = 10):
    """keras.io's "Text classification with Transformer" model, scaled down."""
    import keras
    from keras import layers, ops

    class TransformerBlock(layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
            super().__init__()
            self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = keras.Sequential(
                [layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)]
            )
            self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
            self.dropout1 = layers.Dropout(rate)
            self.dropout2 = layers.Dropout(rate)

        def call(self, inputs):
            attn_output = self.att(inputs, inputs)
            attn_output = self.dropout1(attn_output)
            out1 = self.layernorm1(inputs + attn_output)
            ffn_output = self.ffn(out1)
            ffn_output = self.dropout2(ffn_output)
            return self.layernorm2(out1 + ffn_output)

    class TokenAndPositionEmbedding(layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim):
            super().__init__()
            self.token_emb = layers.Embedding(
                input_dim=vocab_size, output_dim=embed_dim
            )
            self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, x):
            maxlen = ops.shape(x)[-1]
            positions = ops.arange(start=0, stop=maxlen, step=1)
            positions = self.pos_emb(positions)
            x = self.token_emb(x)
            return x + positions

    inputs = layers.Input(shape=(maxlen,))
    x = TokenAndPositionEmbedding(maxlen, vocab, 32)(inputs)
    x = TransformerBlock(32, 2, 32)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="transformer_block")


def train_one(name: str, logdir: str, epochs: int) -> dict:
    """Trains one model with `BNScope()` at its defaults; returns its timings."""
    import keras

    from bnscope import BNScope

    keras.utils.set_random_seed(0)
    samples = BATCH * STEPS_PER_EPOCH
    if name == "transformer_block":
        model = transformer_block()
        x, y = digits_tokens(samples)
    else:
        attribute, preprocessing, dtype = APPLICATIONS[name]
        model = getattr(keras.applications, attribute)(
            weights=None, input_shape=(IMAGE, IMAGE, 3), classes=10
        )
        x, y = digits_images(samples, dtype)
        if preprocessing is not None:  # as the Keras docs tell users to
            module = getattr(keras.applications, preprocessing)
            x = module.preprocess_input(x)
    model.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    cpu, wall = time.process_time(), time.perf_counter()
    history = model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        verbose=0,
        callbacks=[BNScope(log_dir=os.path.join(logdir, name))],
    )
    return {
        "model": name,
        "layers": len(model.layers),
        "params": int(model.count_params()),
        "cpu_s": round(time.process_time() - cpu, 1),
        "wall_s": round(time.perf_counter() - wall, 1),
        "loss": [round(v, 3) for v in history.history["loss"]],
        "accuracy": [round(v, 3) for v in history.history["accuracy"]],
    }


def analyse(logdir: str, names: list[str], verbose: bool) -> int:
    """Prints every finding of each model's run; returns how many were not allowed."""
    from bnscope.analysis.reader import read_logdir
    from bnscope.analysis.summary import summarize

    bad = 0
    for run in read_logdir(logdir).runs:
        model = run.name.split("/")[0]
        if names and model not in names:
            continue
        report = summarize(run)
        steps = run.steps or (None, None)
        print(
            f"\n{model}: steps {steps[0]}–{steps[1]}, {len(run.probe_steps)} probes, "
            f"{len(run.layers)} layers observed"
        )
        shown = 0
        for finding in report.findings:
            allowed = finding.severity == "info" or finding.rule in ALLOWED_WARNINGS
            if allowed and finding.severity == "info" and not verbose:
                continue
            shown += 1
            bad += not allowed
            mark = "  " if allowed else "✗ "
            print(f"  {mark}{finding.severity:7} {finding.rule}: {finding.message}")
        infos = report.count("info")
        if infos and not verbose:
            print(
                f"  ({infos} info finding{'s' if infos != 1 else ''}; --verbose lists them)"
            )
        if not shown and not infos:
            print("  no findings")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"only {QUICK_MODEL}, 2 epochs"
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=None)
    parser.add_argument("--logdir", default=None, help="where to keep the runs")
    parser.add_argument("--analyse-only", metavar="LOGDIR", default=None)
    parser.add_argument("--verbose", action="store_true", help="list info findings too")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:  # the child process: train one model, print its timings
        print(json.dumps(train_one(args.one, args.logdir, args.epochs)))
        return 0
    names = list(args.models or ([QUICK_MODEL] if args.quick else MODELS))
    if args.analyse_only:
        bad = analyse(args.analyse_only, names, args.verbose)
        return 1 if bad else 0
    logdir = args.logdir or tempfile.mkdtemp(prefix="bnscope-false-alarms-")
    epochs = 2 if args.quick else EPOCHS
    print(
        f"{len(names)} model(s), batch {BATCH}, {epochs} epochs x {STEPS_PER_EPOCH} "
        f"steps, BNScope() at its defaults; logs in {logdir}"
    )
    for name in names:
        command = [sys.executable, os.path.abspath(__file__), "--one", name]
        command += ["--logdir", logdir, "--epochs", str(epochs)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{name}: training failed\n{done.stderr[-2000:]}")
            return 1
        timings = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{name}: {timings['layers']} layers, {timings['params']:,} params, "
            f"fit {timings['cpu_s']} s CPU ({timings['wall_s']} s wall), "
            f"loss {timings['loss']}, accuracy {timings['accuracy']}"
        )
    bad = analyse(logdir, names, args.verbose)
    print(
        f"\n{'OK' if not bad else 'FAIL'}: {bad} finding(s) beyond an honest "
        "bn_ema_not_converged"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
