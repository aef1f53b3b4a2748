"""What `bnscope demo` prints around `bnscope.demo`'s two training runs."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console


def print_intro(console: Console, demo, out: str, epochs: int) -> None:
    """What is about to be trained, on what, and where the logs go."""
    console.print(
        f"bnscope demo: two {demo.DEPTH}-layer sigmoid MLPs learn scikit-learn's "
        "digits (1,797 real 8x8 scans of handwritten digits, bundled with "
        f"scikit-learn), {epochs} epochs of Adam at learning rate "
        f"{demo.LEARNING_RATE}, with BNScope probing every "
        f"{demo.PROBE_EVERY_N_STEPS} steps.\n"
        "  [bnscope.title]sick[/]     plain Dense(sigmoid) layers\n"
        "  [bnscope.title]healthy[/]  the same with BatchNormalization before each "
        "sigmoid\n"
        f"Logs go to {out}/.\n"
    )


def progress(console: Console) -> tuple[Callable, Callable]:
    """`(on_start, on_done)` callbacks printing one line per trained model."""

    def on_start(name: str) -> None:
        console.print(f"training [bnscope.title]{name}[/] ...", end=" ")

    def on_done(variant) -> None:
        console.print(
            f"{variant.seconds:.0f} s, test accuracy {variant.test_accuracy:.0%}"
        )

    return on_start, on_done


def print_command(console: Console, command: str) -> None:
    """A command as the user would type it, unwrapped so it can be copied."""
    console.print(f"\n$ {command}", style="bnscope.title", soft_wrap=True)


def print_outro(console: Console, out: str) -> None:
    console.print()
    console.print(
        f"To see the dashboards: [bnscope.title]tensorboard --logdir {out}[/]",
        soft_wrap=True,
    )
    console.print(
        "What each finding means and how to fix it: docs/findings.md",
        style="bnscope.muted",
    )
