"""Drives the FiftyOne App as a person does: its server, headless Chromium, clicks.

Shared by the end-to-end App test (``tests/test_app.py``) and the script that
re-makes the README's screenshots (``docs/make_screenshots.py``). Nothing here
imports FiftyOne: the caller sets FiftyOne's environment (database, plugins
dir) first, and the App server, a subprocess, inherits it.

Selectors rely on what a person sees (texts, roles, tooltips) and on the
attributes FiftyOne itself keeps for its own UI tests (``data-cy``,
``data-item-id`` holding operator URIs), not on generated CSS class names.

Example::

    with AppServer(log_path=Path("server.log")) as server:
        with chromium_page(find_chromium(), Path("/tmp/profile")) as page:
            open_dataset(page, server, "my-dataset", num_samples=2)
            open_panel(page, "sliced_inference_comparison", "Sliced vs baseline")
            save_screenshot(page, Path("panel.png"))
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

#: Where Debian's ``chromium`` package puts the browser.
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
#: How to get it on Debian / Ubuntu (Playwright's own download is not used).
CHROMIUM_INSTALL_HINT = (
    "install Debian's Chromium: `apt-get update && apt-get install -y chromium "
    "chromium-driver` (or set SLICED_INFERENCE_CHROMIUM to a Chromium binary)"
)
#: Headless, sandbox-free (root in containers), and silent: no network calls of
#: its own (updates, sync, QUIC), which fail or hang on offline machines.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Default viewport: wide enough for the sidebar, the grid and a panel.
VIEWPORT = {"width": 1400, "height": 900}


def chromium_candidate() -> Path:
    """Where the browser is looked for: ``$SLICED_INFERENCE_CHROMIUM``, else Debian's."""
    return Path(os.environ.get("SLICED_INFERENCE_CHROMIUM") or DEFAULT_CHROMIUM)


def find_chromium() -> Path | None:
    """The Chromium binary to drive, if it is there (see ``chromium_candidate``)."""
    candidate = chromium_candidate()
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """The FiftyOne App server (``python -m fiftyone.server.main``) on loopback.

    It runs with this process's environment, so it uses the same database and
    plugins dir. Start it once this process has used the database (e.g. made
    the dataset): the server then attaches to this process's database service
    rather than starting one (a service and its mongod live as long as any
    client does). ``stop()`` sends one SIGTERM to the server, then checks that
    every process ever seen in the server's process tree is gone; survivors
    are killed by PID and reported.

    Args:
        log_path: file that receives the server's stdout and stderr.
        port: port to listen on; ``None`` picks a free one.
        startup_timeout: seconds to wait for the server to answer.
    """

    def __init__(
        self, log_path: Path, port: int | None = None, startup_timeout: float = 180
    ) -> None:
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        #: Every process seen in the server's tree (the server included), by PID.
        self.procs: dict[int, psutil.Process] = {}
        self._log: Any = None

    @property
    def url(self) -> str:
        """Base URL of the App."""
        return f"http://127.0.0.1:{self.port}"

    def dataset_url(self, name: str) -> str:
        """URL of a dataset's page in the App."""
        return f"{self.url}/datasets/{urllib.request.quote(name)}"

    def start(self) -> AppServer:
        """Starts the server and waits until it answers HTTP requests."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # closed in stop()
        command = [sys.executable, "-m", "fiftyone.server.main"]
        command += ["--port", str(self.port), "--address", "127.0.0.1"]
        self.process = subprocess.Popen(
            command,
            env=os.environ.copy(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.procs[self.process.pid] = psutil.Process(self.process.pid)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                self.stop()
                raise RuntimeError(
                    f"the App server exited with {code}; "
                    f"see {self.log_path}:\n{self.log_tail()}"
                )
            if _answers(self.url):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"the App server did not answer on {self.url} within "
                    f"{self.startup_timeout:.0f} s; see {self.log_path}"
                )
            time.sleep(0.5)
        self.track()
        return self

    def track(self) -> list[psutil.Process]:
        """Records the processes now in the server's tree; returns all seen so far."""
        if self.process is not None and self.process.poll() is None:
            try:
                tree = self.procs[self.process.pid].children(recursive=True)
            except psutil.NoSuchProcess:
                tree = []
            for proc in tree:
                self.procs.setdefault(proc.pid, proc)
        return list(self.procs.values())

    def stop(self, timeout: float = 60) -> list[str]:
        """Stops the server with one SIGTERM; returns the processes that outlived it.

        Survivors (which would be a bug: FiftyOne should stop them) are then
        killed by PID, so nothing is left running either way. Safe to call twice.
        """
        if self.process is None:
            return []
        self.track()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        survivors = _wait_gone(list(self.procs.values()), timeout)
        report = [_describe(p) for p in survivors]
        for proc in survivors:  # clean up anyway, by PID
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        _wait_gone(survivors, 10)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return report

    def log_tail(self, num_chars: int = 3000) -> str:
        """The end of the server's log."""
        try:
            return self.log_path.read_text(errors="replace")[-num_chars:]
        except OSError:
            return ""

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def running(procs: list[psutil.Process]) -> list[str]:
    """Descriptions of those of ``procs`` still running (zombies count as gone)."""
    return [_describe(p) for p in _alive(procs)]


def processes_matching(*words: str) -> list[str]:
    """This machine's processes whose command line holds all ``words`` (like ``pgrep -f``)."""
    out = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
            continue
        if all(word in cmdline for word in words):
            out.append(_describe(proc))
    return out


def chromium_processes() -> list[str]:
    """This process's descendants that are Chromium (not Playwright's driver)."""
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            program = (proc.cmdline() or [""])[0].lower()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if "chrom" in program:
            out.append(_describe(proc))
    return out


@contextmanager
def chromium_page(
    chromium: Path,
    profile_dir: Path,
    viewport: dict[str, int] | None = None,
    timeout_s: float = 60,
) -> Iterator[Any]:
    """A Playwright page in headless Chromium with a fresh profile in ``profile_dir``.

    Yields a ``playwright.sync_api.Page`` whose actions wait at most
    ``timeout_s``. Browser errors are echoed to stderr (they end up in the
    test's captured output).
    """
    profile_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=str(chromium),
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport=viewport or VIEWPORT,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(timeout_s * 1000)
            page.on(
                "pageerror", lambda e: print(f"[app] page error: {e}", file=sys.stderr)
            )
            yield page
        finally:
            context.close()


def open_dataset(page: Any, server: AppServer, name: str, num_samples: int) -> None:
    """Opens a dataset's page and waits until its grid counts ``num_samples`` samples."""
    page.goto(server.dataset_url(name), timeout=120_000)
    page.get_by_text(f"{num_samples} samples", exact=True).first.wait_for(
        timeout=120_000
    )
    dismiss_promotions(page)


def dismiss_promotions(page: Any, wait_s: float = 3) -> None:
    """Closes FiftyOne's "Explore Enterprise" pop-up, which covers the top right."""
    dismiss = page.get_by_role("button", name="Dismiss", exact=True)
    try:
        dismiss.wait_for(timeout=wait_s * 1000)
    except PlaywrightTimeout:  # not shown (it is shown once per browser profile)
        return
    dismiss.click()
    dismiss.wait_for(state="hidden")


def open_operator(page: Any, uri: str, label: str, wait_s: float = 30) -> Any:
    """Opens an operator's form from its button in the samples grid's actions.

    The button shows only an icon: it is found by the operator URI FiftyOne
    puts on it, and must show ``label`` as its tooltip. Where it is not shown
    (too narrow a grid), the operator browser (the backtick key) is used, as a
    person would. Waits ``wait_s`` for the button. Returns the form's dialog.
    """
    button = page.locator(f'[data-item-id="{uri}"]').first
    try:
        # Waits for the button to be there (placements come after the grid)
        # and reachable: in a narrow grid other actions cover it.
        button.hover(timeout=wait_s * 1000)
        reachable = True
    except PlaywrightTimeout:
        reachable = False
    if reachable:
        page.get_by_text(label, exact=True).first.wait_for()  # the tooltip
        button.click()
    else:
        page.locator("body").press("`")
        page.keyboard.type(label)
        page.get_by_text(label, exact=True).first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(label, exact=True).first.wait_for()
    return dialog


def form_input(dialog: Any, label: str) -> Any:
    """The input under the form field titled ``label`` (FiftyOne does not link them)."""
    return dialog.get_by_text(label, exact=True).first.locator(
        "xpath=following::input[1]"
    )


def pick_option(page: Any, dialog: Any, label: str, option: str) -> None:
    """Picks ``option`` in the dropdown or autocomplete titled ``label``.

    Both are a ``combobox`` to a person (a dropdown's ``input`` is hidden under
    it), so the first combobox after the title is the one to click.
    """
    dialog.get_by_text(label, exact=True).first.locator(
        "xpath=following::*[@role='combobox'][1]"
    ).click()
    page.get_by_role("option", name=option, exact=True).click()


def sidebar_field(page: Any, path: str) -> Any:
    """The entry of field ``path`` in the App's sidebar (its name, as shown there)."""
    return page.locator('[data-cy="sidebar"]').get_by_text(path, exact=True)


def execute_form(dialog: Any) -> None:
    """Clicks the form's Execute button (immediate execution)."""
    dialog.get_by_role("button", name="Execute", exact=True).click()


def open_panel(page: Any, name: str, label: str) -> Any:
    """Opens the panel ``name`` from the "+" (New panel) next to the Samples tab.

    The menu entry and the panel's tab must show ``label``. Does nothing but
    wait when the panel is already open. Returns the panel's content.
    """
    tab = page.locator(f'[data-cy="panel-tab-{name}"]')
    if not tab.count():
        samples = page.locator('[data-cy="panel-tab-samples"]')
        samples.locator("xpath=following::button[@title='New panel'][1]").click()
        page.locator(f'[data-cy="new-panel-option-{name}"]').filter(
            has_text=label
        ).click()
    tab.filter(has_text=label).wait_for()
    content = page.locator(f'[data-cy="panel-content-{name}"]')
    content.wait_for()
    return content


def widen_right_space(page: Any, left_px: int) -> None:
    """Drags the divider between the samples and a split panel to ``left_px``."""
    sash = page.locator('[class*="sash-vertical"]').last
    box = sash.bounding_box()
    if box is None:
        return
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(left_px, y, steps=20)
    page.mouse.up()
    page.mouse.move(0, 0)  # a hovered divider is drawn highlighted


def save_screenshot(page: Any, path: Path, **options: Any) -> Path:
    """Saves a PNG screenshot of the page and prints where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), **options)
    print(f"[app] screenshot: {path}", file=sys.stderr)
    return path


@contextmanager
def screenshot_on_failure(page: Any, path: Path) -> Iterator[None]:
    """Saves a screenshot to ``path`` when the block raises, then re-raises."""
    try:
        yield
    except BaseException:
        try:
            save_screenshot(page, path)
        except Exception as error:  # the browser may be what failed
            print(f"[app] no failure screenshot: {error}", file=sys.stderr)
        raise


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` still running; ``is_running`` also rules out a reused PID."""
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        alive = _alive(procs)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {' '.join(proc.cmdline())[:160]}"
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return str(proc.pid)
