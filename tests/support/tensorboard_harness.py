"""Start TensorBoard and headless Chromium, for the plugin's tests and benchmark.

TensorBoard runs as a subprocess of this interpreter (so the installed
plugin is the tests' own bnscope), on a free port of 127.0.0.1, with
TensorFlow made unimportable (the plugin must work without it), and is
stopped by its PID. Chromium is driven by Selenium through Debian's
`chromium-driver`, which matches Debian's `chromium`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium's own connections are
# refused by this closed network and slow every start down.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _boot(blocked) -> str:
    """`tensorboard` with some modules made unimportable (`import x` raises)."""
    return (
        f"import sys; sys.modules.update(dict.fromkeys({list(blocked)!r})); "
        "sys.argv[0] = 'tensorboard'; from tensorboard.main import run_main; run_main()"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 60.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def get_json(url: str, timeout: float = 60.0):
    return json.loads(get(url, timeout))


class TensorBoard:
    """`tensorboard --logdir LOGDIR --host 127.0.0.1 --port PORT`, as a subprocess.

    Args:
        logdir: The log directory.
        load_fast: TensorBoard's `--load_fast` (`"auto"`, `"true"`: the Rust
            data server; `"false"`: the Python multiplexer).
        extra: More flags, e.g. `["--samples_per_plugin", "scalars=0"]`.
        env: Environment of the subprocess (e.g. PYTHONPATH for bnscope).
        blocked: Modules TensorBoard cannot import. Defaults to TensorFlow.
    """

    def __init__(
        self,
        logdir,
        load_fast="auto",
        extra=(),
        env=None,
        log_path=None,
        blocked=("tensorflow",),
    ):
        self.logdir = os.fspath(logdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or tempfile.mktemp(
            prefix="tensorboard-", suffix=".log"
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        # blocked: by default TensorFlow, so that TensorBoard's
        # `tensorboard.compat.tf` falls back to its stub as on a machine
        # without TF: the plugin must work there (and TensorBoard starts ~5 s
        # faster).
        boot = [sys.executable, "-c", _boot(blocked)]
        command = [
            *boot,
            "--logdir",
            self.logdir,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--load_fast",
            load_fast,
            "--reload_interval",
            "1",
            *extra,
        ]
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its data server child goes with it
        )
        self.pid = self.process.pid

    def wait(self, timeout: float = 120.0, until=None) -> float:
        """Waits until TensorBoard answers, and `until(self)` holds if given."""
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"TensorBoard exited ({self.process.returncode}):\n{self.log()}"
                )
            try:
                get(self.url + "/data/plugins_listing", timeout=5)
                if until is None or until(self):
                    return time.monotonic() - start
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"TensorBoard not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        with contextlib.suppress(OSError), open(self.log_path, "rb") as file:
            return file.read().decode("utf-8", "replace")[-4000:]
        return ""

    def stop(self) -> None:
        """Stops TensorBoard by its PID (and its process group: the data server)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def wait_until_loaded(tb: TensorBoard, expected: dict, timeout: float = 180) -> None:
    """Waits until the plugin lists exactly the runs of `expected` (the runs of
    `summarize --json`, by name) and sees each to its last step."""

    def loaded(tb):
        listing = get_json(tb.url + "/data/plugin/bnscope/runs")["runs"]
        if sorted(r["name"] for r in listing) != sorted(expected):
            return False
        return all(
            get_json(
                tb.url
                + "/data/plugin/bnscope/findings?"
                + urllib.parse.urlencode({"run": name})
            )["steps"]
            == run["steps"]
            for name, run in expected.items()
        )

    tb.wait(timeout=timeout, until=loaded)


def chromium(width: int = 1600, height: int = 1000):
    """A headless Chromium WebDriver with a fresh profile directory."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="bnscope-chromium-")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    driver.bnscope_profile = profile
    return driver


def plugin_url(tensorboard: TensorBoard) -> str:
    """The page TensorBoard puts in the bnscope tab's iframe."""
    return f"{tensorboard.url}/data/plugin_entry.html?name=bnscope"


def wait_ready(driver, timeout: float = 120.0) -> str:
    """Waits for `document.body.dataset.state` to be "ready" or "error"."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: (
            d.execute_script("return document.body && document.body.dataset.state")
            in ("ready", "error")
        )
    )
    return driver.execute_script("return document.body.dataset.state")
