"""Tests mirror the package: a newcomer finds a module's tests by its name.

`bnscope/<part>/<module>.py` is tested in `tests/<part>/test_<module>.py`; a
subpackage (`analysis/rules/`, `recording/stats/`, `layers/`) may keep all its
tests in `tests/<part>/test_<subpackage>.py` instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bnscope"
# Nothing to test on their own: re-exports, the version string, `python -m`.
EXEMPT = {"__init__.py", "_version.py", "__main__.py"}
# Subpackages whose modules share one test file, named after the subpackage.
SHARED = {Path("analysis/rules"), Path("recording/stats"), Path("layers")}


def expected_test_files(module: Path) -> list[Path]:
    relative = module.relative_to(PACKAGE)
    if relative.parent in SHARED:
        package = relative.parent
        return [ROOT / "tests" / package.parent / f"test_{package.name}.py"]
    return [ROOT / "tests" / relative.parent / f"test_{relative.stem}.py"]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name not in EXEMPT)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_has_a_test_file(module):
    candidates = expected_test_files(module)
    assert any(c.exists() for c in candidates), (
        f"no tests for {module.relative_to(ROOT)}: expected "
        + " or ".join(str(c.relative_to(ROOT)) for c in candidates)
    )
