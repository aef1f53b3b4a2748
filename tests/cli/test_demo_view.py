"""What `bnscope demo` prints around its training runs (the runs: test_demo.py)."""

from __future__ import annotations

import io

from bnscope import demo
from bnscope.cli import demo_view
from bnscope.cli.theme import make_console
from bnscope.demo import TrainedVariant


def render(draw) -> str:
    out = io.StringIO()
    draw(make_console(out, width=200))
    return out.getvalue()


def test_intro_says_what_trains_on_what_and_where():
    text = render(lambda console: demo_view.print_intro(console, demo, "out", 3))
    assert "two 8-layer sigmoid MLPs" in text and "3 epochs" in text
    assert "scikit-learn" in text and "Logs go to out/." in text


def test_progress_prints_one_line_per_model():
    variant = TrainedVariant("sick", "out/sick", "out/sick/bnscope", 0.1, 0.09, 7.6)

    def draw(console):
        on_start, on_done = demo_view.progress(console)
        on_start("sick")
        on_done(variant)

    assert render(draw) == "training sick ... 8 s, test accuracy 9%\n"


def test_commands_are_printed_unwrapped_for_copying():
    long = "bnscope compare " + "x" * 150 + " " + "y" * 150
    out = io.StringIO()
    demo_view.print_command(make_console(out, width=40), long)
    assert out.getvalue() == f"\n$ {long}\n"


def test_outro_names_the_tensorboard_command():
    text = render(lambda console: demo_view.print_outro(console, "out"))
    assert "tensorboard --logdir out" in text and "docs/findings.md" in text
