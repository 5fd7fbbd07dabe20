"""The pieces of the real-browser tests: a `streamlit run app.py` subprocess and page helpers.

No browser is ever downloaded: playwright drives ``$EXPLORER_CHROMIUM`` (default
/usr/bin/chromium, Debian's package; CI installs it with apt-get).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "e2e"
CHROMIUM = os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SERVER_START_TIMEOUT = 60
VIEWPORT = {"width": 1400, "height": 1000}


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright; it drives the system chromium)"
    return None


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the test process dies, so no server outlives a killed run."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `streamlit run app.py` subprocess on a free port of 127.0.0.1, on the bundled models
    (``$EXPLORER_CHECKPOINTS`` is removed from its environment, and the warm-up is on as for a user,
    whatever tests/conftest.py set for the in-process tests)."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items()
               if k not in ("EXPLORER_CHECKPOINTS", "EXPLORER_WARMUP", "EXPLORER_THREADS")}
        env.setdefault("EXPLORER_DEVICE", "cpu")
        # one torch thread per server: a test session runs several servers at once, each with its warm-up,
        # and two threads each on a 2-core machine only oversubscribe it
        env.setdefault("OMP_NUM_THREADS", "1")
        self.log_path = log
        self._log = open(log, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             "--server.headless", "true", "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"streamlit did not answer /_stcore/health in {SERVER_START_TIMEOUT} s:\n{self.log()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if not self._log.closed:
            self._log.close()


def app_state(page) -> str:
    return page.locator('[data-testid="stApp"]').get_attribute("data-test-script-state") or ""


def is_idle(page) -> bool:
    return app_state(page) == "notRunning" and not page.locator('[data-testid="stSkeleton"]').count()


def wait_idle(page, timeout: float = 60, settle: float = 0.5) -> None:
    """Wait until the script run is over (stApp says notRunning, no skeleton) for ``settle`` s."""
    deadline = time.monotonic() + timeout
    page.locator('[data-testid="stApp"]').wait_for(timeout=timeout * 1000)
    quiet_since = None
    while time.monotonic() < deadline:
        if is_idle(page):
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return
        else:
            quiet_since = None
        page.wait_for_timeout(100)
    raise TimeoutError(f"the app was still running after {timeout} s (state {app_state(page)!r})")


def open_page(page, url: str, timeout: float = 90) -> None:
    page.goto(url)
    wait_idle(page, timeout)


def submit_and_wait(page, button, done, timeout: float = 150) -> None:
    """Click ``button`` (a form's submit), wait for ``done`` to show and the run to end."""
    button.click()
    done.first.wait_for(timeout=timeout * 1000)
    wait_idle(page, timeout)


def exceptions(page) -> list[str]:
    """The text of every exception box (a traceback shown to the user)."""
    return [e.inner_text() for e in page.locator('[data-testid="stException"]').all()]


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def alerts(page, kind: str) -> list[str]:
    """Texts of st.error / st.warning / st.info / st.success boxes: kind is Error, Warning, Info, Success."""
    return [e.inner_text() for e in page.locator(f'[data-testid="stAlertContent{kind}"]').all()]


def upload(page, name: str, content: bytes, index: int = 0, mime: str = "application/octet-stream") -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').nth(index).set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": content}])


def submit_button(page, label: str):
    return page.locator('[data-testid="stFormSubmitButton"] button').filter(has_text=label)


def screenshot(page, path, max_height: int = 8000) -> None:
    """The whole page: Streamlit scrolls inside stMain, so the viewport grows to its height first."""
    height = page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]');
        return Math.max(main ? main.scrollHeight : 0, document.documentElement.scrollHeight);
    }""")
    size = page.viewport_size or VIEWPORT
    page.set_viewport_size({"width": size["width"], "height": int(min(max(height, size["height"]), max_height))})
    page.wait_for_timeout(500)  # charts re-layout to the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
