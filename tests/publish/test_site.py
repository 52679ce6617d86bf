"""The catalogue site in a real headless Chromium (Debian's chromium, driven by Selenium),
served on 127.0.0.1 only: pages load without console errors, no request leaves 127.0.0.1,
the filters work, the file table and citation equal the record, the map shows the extent."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

from cryokit.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "elevation"))
from test_dem_change import write_case  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("CRYOKIT_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Debian's chromium and chromium-driver "
                                       "(.ci/run installs them)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    import tomllib

    import yaml

    from cryokit.publish.definition import TEMPLATE
    root = tmp_path_factory.mktemp("site")
    write_case(root)
    for name, d in (("run_2010", "2010-08-01"), ("run_2012", "2012-08-01")):
        assert main(["-q", "dem-change", str(root / "ref_2010.tif"), str(root / "tba_1990.tif"),
                     "-o", str(root / name), "--ref-date", d, "--tba-date", "1990-08-01",
                     "--glaciers", str(root / "outlines.gpkg"), "--no-curvature-bias"]) == 0
    base = tomllib.loads(TEMPLATE)
    defs = {"a": {**base, "doi": "10.12345/lyb.a", "keywords": {"place": ["Svalbard"]},
                  "title": {"en": "Longyearbyen elevation change A", "zh": "朗伊尔城高程变化A"}},
            "b": {**base, "doi": "10.12345/lyb.b", "keywords": {"place": ["Adventdalen"]},
                  "title": {"en": "Longyearbyen elevation change B"},
                  "supersedes": "10.12345/lyb.old"}}
    runs = {"a": ["run_2010", "run_2012"], "b": ["run_2010"]}
    for k, d in defs.items():
        (root / f"{k}.yaml").write_text(yaml.safe_dump(d, allow_unicode=True))
        assert main(["-q", "dataset", "build", str(root / f"{k}.yaml"),
                     *[str(root / r) for r in runs[k]], "-o", str(root / f"ds_{k}")]) == 0
    assert main(["-q", "catalog", "add", str(root / "ds_a"), str(root / "ds_b"),
                 "-o", str(root / "cat")]) == 0
    assert main(["-q", "catalog", "site", str(root / "cat"), "-o", str(root / "www")]) == 0
    from cryokit.publish.site import serve
    httpd = serve(root / "www", 0)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,1600", "--no-proxy-server",
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield drv
    drv.quit()


def _requests(drv) -> list[str]:
    urls = []
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _check_page(drv, base):
    errors = [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    urls = [u for u in _requests(drv) if not u.startswith("data:")]   # data: is no request
    assert urls and all(u.startswith(base + "/") for u in urls), urls


def test_index_and_filters(site, browser):
    from selenium.webdriver.common.by import By
    root, base = site
    ARTIFACTS.mkdir(exist_ok=True)
    browser.get(base + "/index.html")
    _check_page(browser, base)
    cards = browser.find_elements(By.CSS_SELECTOR, "li.card")
    assert len(cards) == 2
    assert "朗伊尔城高程变化A" in browser.page_source
    browser.save_screenshot(str(ARTIFACTS / "catalog-index.png"))

    def visible():
        return sorted(c.get_attribute("data-id") for c in
                      browser.find_elements(By.CSS_SELECTOR, "li.card") if c.is_displayed())

    browser.find_element(By.ID, "f-keyword").send_keys("adventdalen")
    browser.find_element(By.ID, "f-apply").click()
    assert visible() == ["10.12345/lyb.b"]
    browser.find_element(By.ID, "f-clear").click()
    browser.execute_script("document.getElementById('f-start').value = '2011-01-01'")
    browser.find_element(By.ID, "f-apply").click()
    assert visible() == ["10.12345/lyb.a"]            # B ends in 2010
    browser.find_element(By.ID, "f-clear").click()
    browser.find_element(By.ID, "f-bbox").send_keys("100,-10,120,10")
    browser.find_element(By.ID, "f-apply").click()
    assert visible() == []
    browser.find_element(By.ID, "f-clear").click()
    browser.find_element(By.ID, "f-bbox").send_keys("10,77,20,79")
    browser.find_element(By.ID, "f-apply").click()
    assert visible() == ["10.12345/lyb.a", "10.12345/lyb.b"]


def test_landing_page_equals_the_record(site, browser):
    from selenium.webdriver.common.by import By
    root, base = site
    rec = json.loads((root / "ds_a" / "dataset.json").read_text())
    browser.get(base + "/datasets/10.12345_lyb.a/index.html")
    _check_page(browser, base)
    rows = browser.find_elements(By.CSS_SELECTOR, "table#files tbody tr")
    assert len(rows) == rec["ds_file_count"]
    sizes = [int(r.find_element(By.CSS_SELECTOR, "td.size").text) for r in rows]
    assert sizes == [f["size_bytes"] for f in rec["ds_files"]]
    browser.find_element(By.ID, "copy-citation").click()
    assert browser.execute_script("return window.cryokitCopied") == rec["citation"]
    assert browser.find_element(By.ID, "citation").text == rec["citation"]
    svg = browser.find_element(By.CSS_SELECTOR, "#extent-map svg")
    assert "polar" in svg.get_attribute("class")      # 78 N: a polar stereographic map
    ext = browser.find_element(By.ID, "extent")
    assert ext.size["width"] > 1 and ext.size["height"] > 1
    assert browser.find_element(By.ID, "doi").get_attribute("href") == \
        "https://doi.org/10.12345/lyb.a"
    for name in ("citation.ris", "citation.bib", "datacite.xml", "dataset.json"):
        assert browser.find_element(By.CSS_SELECTOR, f'a[href="{name}"]')
    browser.save_screenshot(str(ARTIFACTS / "dataset-page.png"))
    browser.get(base + "/datasets/10.12345_lyb.b/index.html")
    _check_page(browser, base)
    assert "superseded" in browser.find_element(By.ID, "versions").text
