"""`RunReport`: findings of a run and the `--fail-on` decision."""

import pytest

from bnscope.analysis.rules import Finding
from bnscope.analysis.runs import Run
from bnscope.analysis.summary import FAIL_LEVELS, RunReport, summarize
from tests.support.synthetic_runs import SICK_RUNS


def report(*severities: str) -> RunReport:
    findings = tuple(
        Finding("x", s, None, 1, 1, None, None, "message", "hint") for s in severities
    )
    return RunReport(run=Run(name="r", path="r", scalars={}), findings=findings)


@pytest.mark.parametrize(
    "severities, fail_on, fails",
    [
        ((), "info", False),
        (("info",), "info", True),
        (("info",), "warning", False),
        (("warning",), "warning", True),
        (("warning",), "error", False),
        (("error",), "error", True),
        (("error",), "never", False),
    ],
)
def test_fails(severities, fail_on, fails):
    assert fail_on in FAIL_LEVELS
    assert report(*severities).fails(fail_on) is fails


def test_counts():
    assert report("error", "info", "info").count("info") == 2


def test_summarize_applies_the_rules(tmp_path):
    from bnscope.analysis.reader import read_run

    SICK_RUNS["dead_relu"]().write(tmp_path)
    found = summarize(read_run(str(tmp_path))).findings
    assert [f.rule for f in found] == ["dead_relu"]
