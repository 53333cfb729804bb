"""The Solara marrow-lattice page (sim/mesa_page.py) served by ``solara run`` and rendered in
headless Chromium: the lattice is drawn and the controls are on the page.

Needs the system browser (Debian: ``apt-get install chromium chromium-driver``), the ``viz``
extra (Solara) and Selenium. Without the browser the test is skipped with the reason; CI sets
``CMLSIM_REQUIRE_BROWSER=1`` so that a missing browser or extra fails instead. Every wait is
bounded: the server start, the page load and the wait for the lattice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "sim" / "mesa_page.py"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

#: Bounds of the waits (s): generous for a loaded two-core machine, finite so a broken page
#: fails instead of hanging.
SERVER_START_S = 90.0
PAGE_LOAD_S = 90.0

#: The controls the page offers (labels of :data:`sim.mesa_page.MODEL_PARAMS`) and Solara's
#: run buttons.
CONTROLS = ("lattice side", "cell scale", "TKI effect u", "TKI stop (day)")

#: The lattice colours (RGB 0-255) of :func:`sim.mesa_page.lattice_figure`.
QUIESCENT_BLUE = (0x00, 0x72, 0xB2)
T_CELL_ORANGE = (0xE6, 0x9F, 0x00)


def _prerequisites() -> str | None:
    """Why the page cannot be rendered here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return f"{path} not installed (Debian: apt-get install chromium chromium-driver)"
    for module, extra in (("solara", "the viz extra: pip install -e .[viz]"), ("selenium", "dev")):
        try:
            __import__(module)
        except ImportError:
            return f"{module} not installed ({extra})"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, bound_s: float) -> None:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"solara exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"solara did not answer {url} within {bound_s:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    why = _prerequisites()
    if why is not None:
        if os.environ.get("CMLSIM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CMLSIM_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    port = _free_port()
    log = tmp_path_factory.mktemp("solara") / "server.log"
    cmd = [sys.executable, "-m", "solara", "run", str(PAGE), "--host", "127.0.0.1",
           "--port", str(port), "--production", "--no-open"]  # fmt: skip
    env = {**os.environ, "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False", "PYTHONUNBUFFERED": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for_server(url, proc, log, SERVER_START_S)
        yield url
    finally:  # the server and anything it started (its own session, so its own group)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    """(the rendered page's text, the screenshot as an RGB array, the screenshot's path)."""
    from PIL import Image
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    out = tmp_path_factory.mktemp("page")
    profile = tempfile.mkdtemp(prefix="cmlsim-chromium-", dir=out)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1400,1000"):  # fmt: skip
        opts.add_argument(arg)
    # the system driver, never Selenium Manager's download
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        driver.set_page_load_timeout(PAGE_LOAD_S)
        driver.set_script_timeout(30)
        driver.get(server)

        def lattice_drawn(d) -> bool:
            # the lattice and the time series arrive as two <img> of matplotlib figures
            text = d.find_element(By.TAG_NAME, "body").text
            imgs = [i for i in d.find_elements(By.TAG_NAME, "img") if i.size["width"] > 150]
            return len(imgs) >= 2 and all(c in text for c in CONTROLS)

        try:
            WebDriverWait(driver, PAGE_LOAD_S, poll_frequency=0.5).until(lattice_drawn)
        except TimeoutException:
            driver.save_screenshot(str(out / "mesa_page_timeout.png"))
            body = driver.find_element(By.TAG_NAME, "body").text
            pytest.fail(
                f"no lattice and controls within {PAGE_LOAD_S:.0f} s; page text:\n{body[:3000]}"
            )
        time.sleep(1.0)  # let the last figure finish painting
        shot = out / "mesa_page.png"
        driver.save_screenshot(str(shot))
        text = driver.find_element(By.TAG_NAME, "body").text
        buttons = [b.text.strip().lower() for b in driver.find_elements(By.TAG_NAME, "button")]
        sliders = driver.find_elements(By.CSS_SELECTOR, ".v-slider, input[type=range]")
    finally:
        with contextlib.suppress(Exception):
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    rgb = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    return {"text": text, "buttons": buttons, "sliders": len(sliders), "rgb": rgb, "path": shot}


def _share(rgb: np.ndarray, colour: tuple[int, int, int], tol: int = 24) -> float:
    """Fraction of the screenshot's pixels within ``tol`` of ``colour`` in every channel."""
    return float((np.abs(rgb - np.array(colour)).max(axis=-1) <= tol).mean())


def test_controls_are_on_the_page(page):
    for label in CONTROLS:
        assert label in page["text"], label
    assert page["sliders"] >= 4  # lattice side, cell scale, TKI effect, TKI stop
    assert any("step" in b for b in page["buttons"]), page["buttons"]
    assert any("reset" in b for b in page["buttons"]), page["buttons"]


def test_lattice_is_drawn_in_its_colours(page):
    rgb = page["rgb"]
    assert rgb.shape[0] > 500 and rgb.shape[1] > 800
    # leukemic cells (the Reds colour map: strong red, weak green and blue)
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 110) & (rgb[..., 2] < 110)
    blue = _share(rgb, QUIESCENT_BLUE)
    orange = _share(rgb, T_CELL_ORANGE)
    # plausible proportions of a 1400 x 1000 page whose lattice is a fraction of it: each
    # colour present, none filling the page (a page all red would be an error screen)
    assert 0.002 < red.mean() < 0.5, red.mean()
    assert 0.0005 < blue < 0.3, blue
    assert 0.00005 < orange < 0.3, orange


def test_page_name_and_no_error_on_the_page(page):
    text = page["text"]
    assert "cmlsim marrow lattice" in text  # the page's name
    for bad in ("Traceback", "Error", "Exception"):
        assert bad not in text, text[:2000]
