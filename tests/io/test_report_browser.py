"""report.html in a real headless Chromium: no console errors, one row per case, and the
viewer's canvas shows the mask where the mask is."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from medcl.io import get_card
from medcl.io.evaluate import run_evaluation, write_phantom_cases
from medcl.io.report import write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
    reason="needs Debian chromium + chromium-driver (.ci/run installs them)")


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory) -> Path:
    root = write_phantom_cases(tmp_path_factory.mktemp("ph"), 4, size=20, seed=3)
    (root / "imagesTr" / "case_003.nii.gz").write_bytes(b"broken")
    out = tmp_path_factory.mktemp("ev") / "ev"
    run_evaluation(spec="medcl.io.evaluate:THRESHOLD", card=get_card("msd_task09_spleen"),
                   root=root, out=out, progress="quiet", report=True)
    return out


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("selenium", reason="the dev extra's selenium drives Chromium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="medcl-chromium-")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,2400",
                "--force-device-scale-factor=1", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_page_loads_rows_and_viewer_shows_the_mask(evaluation, browser):
    from PIL import Image
    from selenium.webdriver.common.by import By

    page = evaluation / "report.html"
    text = page.read_text()
    # self-contained: nothing fetched at view time
    assert "<script src" not in text and "stylesheet" not in text and "src='http" not in text
    assert "threshold on msd_task09_spleen" in text
    browser.get(page.as_uri())
    viewer = browser.find_element(By.ID, "viewer")
    assert viewer.get_attribute("data-ready") == "case_000"
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    rows = browser.find_elements(By.CSS_SELECTOR, "#cases tbody tr")
    assert len(rows) == 4
    failed = browser.find_elements(By.CSS_SELECTOR, "#cases tbody tr.failed")
    assert [r.find_element(By.TAG_NAME, "td").text for r in failed] == ["case_003"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#cases img.thumb")) == 3

    # sorting by dice (column 3) puts the failed case (empty cell) where numbers end
    browser.find_element(By.CSS_SELECTOR, "#cases th[data-col='3']").click()
    order = [r.find_element(By.TAG_NAME, "td").text
             for r in browser.find_elements(By.CSS_SELECTOR, "#cases tbody tr")]
    assert sorted(order) == ["case_000", "case_001", "case_002", "case_003"]

    # the axial canvas: red (prediction) exactly where the saved prediction is on
    with np.load(evaluation / "cases" / "case_000.npz") as f:
        pred, image = f["pred"], f["image"]
    z = int(np.argwhere(pred).mean(0).round()[2])
    scale = int(viewer.get_attribute("data-scale"))
    shot = np.asarray(Image.open(io.BytesIO(
        browser.find_element(By.ID, "cz").screenshot_as_png)).convert("RGB")).astype(int)
    shot = shot[1:-1, 1:-1]  # the canvas's 1 px border
    X, Y = pred.shape[:2]
    assert shot.shape[:2] == (Y * scale, X * scale)
    centre = shot[scale // 2::scale, scale // 2::scale]  # one pixel per voxel, (rows, cols)
    on = pred[::-1, ::-1, z].T > 0  # radiological: cols = -x, rows = -y
    assert on.sum() > 10
    assert (centre[on][:, 0] >= 250).all()  # red channel saturated over the mask
    truth_off = ~on
    gray = centre[truth_off]
    plain = (gray[:, 0] == gray[:, 1]) & (gray[:, 1] == gray[:, 2])
    assert plain.mean() > 0.5 and gray[:, :3].std() > 5  # the image itself, not blank
    assert image.std() > 0

    # unchecking the prediction removes the red
    browser.find_element(By.ID, "showpred").click()
    shot2 = np.asarray(Image.open(io.BytesIO(
        browser.find_element(By.ID, "cz").screenshot_as_png)).convert("RGB")).astype(int)
    c2 = shot2[1:-1, 1:-1][scale // 2::scale, scale // 2::scale]
    assert (c2[on][:, 0] < 250).mean() > 0.5


def test_report_rebuild_and_bad_folder(evaluation, tmp_path, medcl_cli):
    code, out, _ = medcl_cli(["report", evaluation, "--case", "case_001"])
    assert code == 0 and out.strip().endswith("report.html")
    assert "data-case='case_001'" in (evaluation / "report.html").read_text()
    code, _, err = medcl_cli(["report", tmp_path])
    assert code == 2 and "no cases.csv" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(Exception, match="no saved volumes"):
        write_report(evaluation, case="case_003")
