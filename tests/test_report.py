"""``neurohdl report``: one self-contained HTML page, opened in headless Chromium."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from neurohdl.flows.demo import run_demo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def open_in_chromium(page, screenshot) -> tuple[list[str], list[str]]:
    """Load ``page`` headless, save a screenshot; the console messages, and the unexpected ones
    (headless Chromium logs every level alike, so anything but the report's own line counts)."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--window-size=1100,4800", f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln]
    errors = [ln for ln in console if '"neurohdl report: ' not in ln]
    return console, errors


def test_console_check_sees_errors(tmp_path):
    """The browser check itself can fail: a page that logs an error and throws is caught."""
    if not CHROMIUM:
        pytest.fail("chromium is missing: apt-get install chromium (make sysdeps does this as root)")
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('broken'); undefined_name();</script></body></html>")
    _, errors = open_in_chromium(page, tmp_path / "bad.png")
    assert any("Uncaught ReferenceError" in e for e in errors), errors


def test_report_of_a_demo_opens_without_console_errors(tmp_path, cli):
    if not CHROMIUM:
        pytest.fail("chromium is missing: apt-get install chromium (make sysdeps does this as root)")
    demo = tmp_path / "demo"
    summary = run_demo(["lif", "ramp_adc", "sfq"], out=demo, quick=True)
    assert summary["passed"]
    code, out, err = cli("report", str(demo))
    assert code == 0, err
    page = demo / "report.html"
    assert [p.name for p in demo.glob("*.html")] == ["report.html"]
    text = page.read_text()
    assert not re.search(r"(src|href)=['\"]https?:", text), "the page must be self-contained"
    assert text.count("data:image/png;base64,") == 4  # raster, traces, transfer curves, XOR rates
    console, errors = open_in_chromium(page, tmp_path / "report.png")
    assert not errors, errors
    assert any("neurohdl report: 4 figures" in ln for ln in console), console
    from matplotlib.image import imread

    shot = imread(tmp_path / "report.png")
    drawn = (shot[..., :3] < 0.9).any(axis=-1).mean()
    colours = len(np.unique((shot[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert drawn > 0.01 and colours > 1000, (
        f"the screenshot looks empty ({drawn:.3f} drawn, {colours} colours)"
    )


def test_report_needs_a_demo_folder(tmp_path, cli):
    code, _, err = cli("report", str(tmp_path))
    assert code == 2 and "no summary.json" in err and "neurohdl demo" in err
