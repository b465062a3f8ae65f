#!/usr/bin/env python3
"""Regenerate docs/dashboard.png, the README's picture of the dashboard.

    make dashboard-png        (or: python3 tests/e2e/dashboard_png.py)

Starts build/ringlb with its 3 default replicas on a free loopback port,
sends it traffic, opens /dashboard in headless Chromium (chromium,
chromium-driver, python3-selenium) at 1280 px wide, looks key 42 up, and
saves the whole page once the request rates are live.  Everything it
starts is stopped by pid before it exits.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from conftest import free_port, get, wait_for, wait_healthy, wait_port  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="where ringlb and ringlb-replica are (build/)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs",
                                                  "dashboard.png"))
    ap.add_argument("--width", type=int, default=1280)
    args = ap.parse_args()

    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        sys.exit("dashboard_png: python3-selenium is not installed (apt-get "
                 "install chromium chromium-driver python3-selenium)")
    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_bin:
        sys.exit("dashboard_png: Chromium is not installed (apt-get install "
                 "chromium chromium-driver)")

    tmp = tempfile.mkdtemp(prefix="dashboard-png-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGLB_")}
    log = open(os.path.join(tmp, "ringlb.log"), "wb")
    lb = subprocess.Popen([os.path.join(args.build, "ringlb"), "--listen",
                           "127.0.0.1:%d" % port], stdout=log,
                          stderr=subprocess.STDOUT, env=env)
    stop = threading.Event()
    driver = None
    try:
        wait_port(port, lb, 10)
        wait_healthy(port, 3, 20)
        for i in range(300):
            get(port, "/home?request_id=%d" % i)

        def traffic():
            i = 300
            while not stop.is_set() and i < 20000:
                get(port, "/home?request_id=%d" % i)
                i += 1
                time.sleep(0.01)

        t = threading.Thread(target=traffic, daemon=True)
        t.start()

        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--hide-scrollbars",
                  "--window-size=%d,900" % args.width,
                  "--user-data-dir=%s" % os.path.join(tmp, "chromium")):
            opts.add_argument(a)
        service = Service(executable_path=driver_bin,
                          env=dict(os.environ, TMPDIR=tmp))
        driver = webdriver.Chrome(options=opts, service=service)
        driver.set_page_load_timeout(20)
        driver.get("http://127.0.0.1:%d/dashboard" % port)
        js = driver.execute_script
        wait_for(lambda: js("return document.querySelectorAll("
                            "'#replicas tr').length") == 3, 10, "3 rows")
        driver.find_element("id", "key").send_keys("42")
        js("document.querySelector('#lookup button').click()")
        wait_for(lambda: js("return document.querySelectorAll("
                            "'#key-point').length") == 1, 10, "the key")

        def polls():
            return int(js("return document.body.dataset.polls || 0"))

        js("document.activeElement.blur()")     # no text cursor
        n = polls()
        wait_for(lambda: polls() >= n + 3, 10, "three polls with traffic")
        # the viewport itself, exactly the page's size (a window's size
        # would count the browser's own frame)
        height = js("return document.documentElement.scrollHeight")
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": args.width, "height": height, "deviceScaleFactor": 1,
            "mobile": False})
        n = polls()
        wait_for(lambda: polls() >= n + 1, 5, "a poll at full height")
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        driver.save_screenshot(args.out)
        print("dashboard_png: wrote %s (%d x %d)" % (args.out, args.width,
                                                      height))
    finally:
        stop.set()
        if driver is not None:
            driver.quit()
        lb.send_signal(signal.SIGTERM)
        try:
            lb.wait(15)
        except subprocess.TimeoutExpired:
            lb.kill()
            lb.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
