"""The bnscope tab as headless Chromium renders it, in a real TensorBoard.

The logdir is the real quick demo (`bnscope.demo.run(quick=True)`: two
8-layer sigmoid MLPs trained by `fit` with `BNScope`, without and with BN).
TensorBoard runs as a subprocess on a free port of 127.0.0.1 with TensorFlow
unimportable, and is stopped by its PID; Chromium is driven by Selenium and
Debian's chromium-driver (`.ci/run` installs both).

1. TensorBoard's own page: the "bnscope" tab exists, clicking it loads the
   plugin's iframe, and the plugin renders inside it.
2. The iframe's page on its own (the same document, the whole window): one
   heatmap row per layer in depth order, the findings exactly as
   `bnscope summarize --json` words them, hover, a finding's link, the line
   chart of a clicked row.

The screenshots go to a temporary directory; `BNSCOPE_SCREENSHOTS=docs
python -m pytest -n 0 -m browser` refreshes the ones the README and
docs/tensorboard.md show.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest

from tests.support.tensorboard_harness import (
    TensorBoard,
    chromium,
    get_json,
    plugin_url,
    wait_ready,
    wait_until_loaded,
)

pytestmark = [pytest.mark.browser, pytest.mark.tensorboard]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Where screenshots go: docs/ only when asked, so a test run leaves the tree clean.
DOCS = os.path.join(
    ROOT,
    os.environ.get("BNSCOPE_SCREENSHOTS") or tempfile.mkdtemp(prefix="bnscope-shots-"),
)
SICK, HEALTHY = "sick/bnscope", "healthy/bnscope"
ROW_HEIGHT = 14  # px, index.js ROW_HEIGHT


def summarize_json_cli(logdir) -> dict:
    """`bnscope summarize LOGDIR --json`: the real console command."""
    done = subprocess.run(
        [sys.executable, "-m", "bnscope", "summarize", str(logdir), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def demo_logdir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "bnscope-demo"
    code = f"import bnscope.demo as demo; demo.run({str(out)!r}, quick=True)"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def server(demo_logdir):
    expected = {run["run"]: run for run in summarize_json_cli(demo_logdir)["runs"]}
    assert sorted(expected) == [HEALTHY, SICK]

    tb = TensorBoard(demo_logdir)
    try:
        wait_until_loaded(tb, expected)
        yield tb, expected
    finally:
        tb.stop()
        # Stopped by its PID: the process (and its process group) is gone.
        assert tb.process.poll() is not None
        with pytest.raises(ProcessLookupError):
            os.kill(tb.pid, 0)


@pytest.fixture(scope="module")
def driver():
    driver = chromium(1600, 1000)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(driver.bnscope_profile, ignore_errors=True)


def dom_findings(driver, side):
    return driver.execute_script(
        """
        const side = arguments[0];
        return [...document.querySelectorAll(`.bn-findings[data-side="${side}"] .bn-finding`)]
          .map((li) => ({
            rule: li.dataset.rule, severity: li.dataset.severity,
            layer: li.dataset.layer || null,
            step: li.dataset.step === '' ? null : Number(li.dataset.step),
            last_step: li.dataset.lastStep === '' ? null : Number(li.dataset.lastStep),
            message: li.querySelector('.bn-message').textContent,
            hint: (li.querySelector('.bn-hint')?.textContent || '').replace(/^→ /, ''),
            evidence: li.querySelector('.bn-evidence')?.textContent || '',
          }));
        """,
        side,
    )


def dom_rows(driver, side):
    return driver.execute_script(
        """
        const side = arguments[0];
        return [...document.querySelectorAll(`.bn-heatmap[data-side="${side}"] .bn-row`)]
          .map((r) => ({row: Number(r.dataset.row), layer: r.dataset.layer || null,
                        depth: r.dataset.depth === undefined ? null : Number(r.dataset.depth),
                        text: r.textContent}));
        """,
        side,
    )


def report_format(value):
    """`bnscope summarize`'s number format (`analysis.formatting.format_number`)."""
    from bnscope.analysis.formatting import format_number

    return format_number(value)


def test_the_tab_exists_and_renders_inside_tensorboard(server, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    tb, expected = server
    listing = get_json(tb.url + "/data/plugins_listing")
    assert listing["bnscope"]["enabled"] is True
    driver.get(tb.url + "/")
    find_tab = """
        return [...document.querySelectorAll('*')].find((e) => e.children.length === 0
          && e.textContent.trim().toLowerCase() === 'bnscope') || null;
    """
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(find_tab)).click()
    iframe = WebDriverWait(driver, 60).until(
        lambda d: d.find_element(
            By.CSS_SELECTOR, 'iframe[src*="plugin_entry.html?name=bnscope"]'
        )
    )
    driver.switch_to.frame(iframe)
    try:
        assert wait_ready(driver, 120) == "ready"
        panes = driver.find_elements(By.CSS_SELECTOR, ".bn-pane-head")
        assert [p.get_attribute("data-run") for p in panes] == [SICK, HEALTHY]
        rows = [r["layer"] for r in dom_rows(driver, "a") if r["layer"]]
        assert rows == expected[SICK]["layers"]
    finally:
        driver.switch_to.default_content()


def test_heatmaps_findings_hover_links_and_charts(server, driver):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    tb, expected = server
    driver.set_window_size(1600, 1000)
    driver.get(plugin_url(tb))
    assert wait_ready(driver, 120) == "ready", driver.find_element(
        By.TAG_NAME, "body"
    ).text

    # Two runs side by side, the sick one first.
    assert (
        Select(driver.find_element(By.ID, "bn-run-a")).first_selected_option.text
        == SICK
    )
    assert (
        Select(driver.find_element(By.ID, "bn-run-b")).first_selected_option.text
        == HEALTHY
    )

    # One heatmap row per layer, in depth order, class/activation beside it.
    for side, run in (("a", SICK), ("b", HEALTHY)):
        rows = [r for r in dom_rows(driver, side) if r["layer"] is not None]
        assert [r["layer"] for r in rows] == expected[run]["layers"]
        assert [r["depth"] for r in rows] == list(range(len(rows)))
    sick_rows = {r["layer"]: r for r in dom_rows(driver, "a") if r["layer"]}
    assert "Dense" in sick_rows["hidden_1"]["text"]
    assert "sigmoid" in sick_rows["hidden_1"]["text"]
    healthy_rows = {r["layer"]: r for r in dom_rows(driver, "b") if r["layer"]}
    assert "BatchNorm" in healthy_rows["bn_1"]["text"]

    # The findings are `bnscope summarize --json`'s: same order, same words.
    keys = ("rule", "severity", "layer", "step", "last_step", "message", "hint")
    for side, run in (("a", SICK), ("b", HEALTHY)):
        got = dom_findings(driver, side)
        want = expected[run]["findings"]
        assert [{k: f[k] for k in keys} for f in got] == [
            {k: f[k] for k in keys} for f in want
        ]
        for f_got, f_want in zip(got, want, strict=True):
            parts = [
                f"{label} {report_format(f_want[key])}"
                for label, key in (("value", "value"), ("limit", "threshold"))
                if f_want[key] is not None
            ]
            assert f_got["evidence"] == " · ".join(parts)
    sick_rules = {f["rule"] for f in expected[SICK]["findings"]}
    assert "vanishing_gradient" in sick_rules
    # 3 quick epochs leave BN's moving statistics short of 3 EMA windows: a note.
    assert {f["severity"] for f in expected[HEALTHY]["findings"]} <= {"info"}

    # Hover: the first layer's last gradient norm, exact, never shown as 0.
    active = driver.find_element(By.CSS_SELECTOR, ".bn-stat.bn-active")
    assert active.get_attribute("data-stat") == "grad_norm"
    overlay = driver.find_element(By.CSS_SELECTOR, '.bn-overlay[data-side="a"]')
    width, height = overlay.size["width"], overlay.size["height"]
    steps = driver.execute_script("return window.bnscope.state.data.a.probe_steps")
    x = (len(steps) - 0.5) * width / len(steps) - width / 2
    y = (sick_rows["hidden_1"]["row"] + 0.5) * ROW_HEIGHT - height / 2
    ActionChains(driver).move_to_element_with_offset(overlay, int(x), int(y)).perform()
    tooltip = driver.find_element(By.ID, "bn-tooltip")
    WebDriverWait(driver, 10).until(lambda d: tooltip.is_displayed())
    shown = driver.execute_script(
        "return {...document.getElementById('bn-tooltip').dataset}"
    )
    series = get_json(
        tb.url
        + "/data/plugin/bnscope/series?"
        + urllib.parse.urlencode({"run": SICK, "layer": "hidden_1"})
    )["series"]["grad_norm/hidden_1"]
    assert shown["layer"] == "hidden_1" and int(shown["step"]) == series["steps"][-1]
    exact = series["values"][-1]
    assert 0 < exact < 1e-3  # the vanishing gradient of the sick model's first layer
    assert math.isclose(float(shown["shown"]), exact, rel_tol=1e-6)
    assert "e-" in shown["shown"] and shown["shown"] in tooltip.text

    # A finding links to its layer's row and step range.
    finding = next(f for f in expected[SICK]["findings"] if f["layer"])
    driver.find_element(
        By.CSS_SELECTOR,
        f'.bn-findings[data-side="a"] .bn-finding[data-rule="{finding["rule"]}"]'
        f'[data-layer="{finding["layer"]}"]',
    ).click()
    highlighted = driver.find_elements(
        By.CSS_SELECTOR, '.bn-heatmap[data-side="a"] .bn-row.bn-highlight'
    )
    assert [h.get_attribute("data-layer") for h in highlighted] == [finding["layer"]]
    marked = driver.execute_script(
        "return {...document.querySelector('.bn-overlay[data-side=\"a\"]').dataset}"
    )
    assert steps[int(marked["firstColumn"])] == finding["step"]
    assert steps[int(marked["lastColumn"])] == finding["last_step"]

    # Rows matched as `bnscope compare` pairs layers: hidden_k with hidden_k.
    Select(driver.find_element(By.ID, "bn-match")).select_by_value("class")
    assert wait_ready(driver, 30) == "ready"
    a_rows = {r["layer"]: r["row"] for r in dom_rows(driver, "a") if r["layer"]}
    b_rows = {r["layer"]: r["row"] for r in dom_rows(driver, "b") if r["layer"]}
    for k in range(1, 9):
        assert a_rows[f"hidden_{k}"] == b_rows[f"hidden_{k}"]
    Select(driver.find_element(By.ID, "bn-match")).select_by_value("depth")
    assert wait_ready(driver, 30) == "ready"

    # Clicking a row shows that layer's series, both runs, on a log axis.
    driver.find_element(
        By.CSS_SELECTOR, '.bn-heatmap[data-side="a"] .bn-row[data-layer="hidden_1"]'
    ).click()
    chart = driver.find_element(By.ID, "bn-chart")
    WebDriverWait(driver, 10).until(lambda d: chart.is_displayed())
    assert chart.get_attribute("data-layer") == "hidden_1,hidden_1"
    line = driver.find_element(
        By.CSS_SELECTOR, '#bn-chart canvas.bn-line[data-stat="grad_norm"]'
    )
    assert line.get_attribute("data-scale") == "log"

    # The screenshot of the whole tab, hovering the first layer.
    page_height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1600, min(1800, max(1000, page_height + 140)))
    time.sleep(0.3)
    overlay = driver.find_element(By.CSS_SELECTOR, '.bn-overlay[data-side="a"]')
    y = (sick_rows["hidden_1"]["row"] + 0.5) * ROW_HEIGHT - overlay.size["height"] / 2
    ActionChains(driver).move_to_element_with_offset(overlay, int(x), int(y)).perform()
    path = os.path.join(DOCS, "bnscope-tab.png")
    assert driver.save_screenshot(path) and os.path.getsize(path) > 20_000


def test_dashboards_without_the_tab(server, driver):
    """Custom Scalars charts only what is recorded, and the gradient flow by depth."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    tb, _ = server
    layout = get_json(tb.url + "/data/plugin/custom_scalars/layout")
    titles = [chart["title"] for c in layout["category"] for chart in c["chart"]]
    assert "step_grad_norm" not in titles  # the demo records no exact gradients
    assert "grad_norm_log10" in titles
    depth = next(c for c in layout["category"] if "by depth" in c["title"])
    first = [chart["title"] for chart in depth["chart"]][:3]
    assert first[0].startswith("0 · hidden_1")
    # Time Series (filtered to the gradient norms) and Custom Scalars, as a
    # user opens them: screenshots for docs/tensorboard.md.
    for url, path in (
        ("/?tagFilter=grad_norm#timeseries", "tensorboard-time-series.png"),
        ("/#custom_scalars", "tensorboard-custom-scalars.png"),
    ):
        driver.set_window_size(1600, 1100)
        driver.get(tb.url + url)
        WebDriverWait(driver, 60).until(
            lambda d: (
                d.find_elements(By.TAG_NAME, "canvas")
                or d.find_elements(By.TAG_NAME, "svg")
            )
        )
        time.sleep(4)  # charts draw after their data arrives
        assert driver.save_screenshot(os.path.join(DOCS, path))
