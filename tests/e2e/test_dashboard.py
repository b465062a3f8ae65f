"""The dashboard in a real browser: headless Chromium (Debian's chromium,
chromium-driver and python3-selenium) loads /dashboard from a running
ringlb, checks it against /rep, adds a replica through the page, kills one
and watches its state change, and looks a key up on the ring."""
import os
import shutil
import signal
import threading
import time

import pytest

from conftest import children, get, rep_names, wait_for

selenium = pytest.importorskip(
    "selenium", reason="python3-selenium is not installed (apt-get install "
    "chromium chromium-driver python3-selenium)")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
SHOT = os.path.join(os.path.dirname(__file__), "..", "..", "build",
                    "dashboard.png")


@pytest.fixture
def browser(tmp_path):
    if not CHROMIUM or not DRIVER:
        pytest.skip("Chromium is not installed (apt-get install chromium "
                    "chromium-driver python3-selenium)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--window-size=1280,900",
              "--user-data-dir=%s" % (tmp_path / "chromium")):
        opts.add_argument(a)
    # Chromium keeps its singleton socket in TMPDIR: keep it in the test's
    env = dict(os.environ, TMPDIR=str(tmp_path))
    service = Service(executable_path=DRIVER, env=env)
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


# The page redraws once a second, so elements are read and clicked in one
# script each, never held across a redraw.
def js(driver, script, *args):
    return driver.execute_script(script, *args)


def rows(driver):
    return dict(js(driver, "return [...document.querySelectorAll("
                   "'#replicas tr')].map(tr => [tr.dataset.name, "
                   "tr.dataset.state])"))


def count(driver, sel):
    return js(driver, "return document.querySelectorAll(arguments[0])"
              ".length", sel)


def texts(driver, sel):
    return js(driver, "return [...document.querySelectorAll(arguments[0])]"
              ".map(e => e.textContent)", sel)


def click(driver, sel):
    js(driver, "document.querySelector(arguments[0]).click()", sel)


def polls(driver):
    return int(js(driver, "return document.body.dataset.polls || 0"))


def test_dashboard_in_a_browser(procs, browser):
    lb = procs.ringlb(healthy=3)
    # some traffic, so that the counts are live
    for i in range(60):
        assert get(lb.port, "/home?request_id=%d" % i).status == 200
    browser.get("http://127.0.0.1:%d/dashboard" % lb.port)
    wait_for(lambda: len(rows(browser)) == 3, 10, "3 replicas on the page")
    assert sorted(rows(browser)) == rep_names(lb.port)
    assert set(rows(browser).values()) == {"up"}
    # the ring: one tick per sampled arc, colored by replica
    assert count(browser, "#ring line.tick") == 1024
    assert sum(int(t) for t in texts(browser, "#replicas td.total")) == 60
    # look a key up: the page names the owner /map_request names
    owner = get(lb.port, "/map_request?id=42").json()["mapped_server"]
    browser.find_element(By.ID, "key").send_keys("42")
    click(browser, "#lookup button")
    wait_for(lambda: owner in texts(browser, "#lookup-out")[0], 10,
             "the key's owner on the page")
    wait_for(lambda: count(browser, "#key-point") == 1, 5, "the key's point")
    wait_for(lambda: texts(browser, "#replicas tr.owner td")[:1] == [owner],
             5, "the owner's row marked")

    # requests per second come from two polls a second apart: send traffic
    # for a few polls, and take the picture while it flows
    stop = threading.Event()

    def traffic():
        i = 60
        while not stop.is_set() and i < 5000:
            get(lb.port, "/home?request_id=%d" % i)
            i += 1
            time.sleep(0.005)

    t = threading.Thread(target=traffic)
    t.start()
    try:
        n = polls(browser)
        wait_for(lambda: polls(browser) >= n + 3, 10, "three more polls")
        rates = [float(x) for x in texts(browser, "#replicas td.rps")]
        assert len(rates) == 3 and sum(rates) > 0, rates
        os.makedirs(os.path.dirname(SHOT), exist_ok=True)
        browser.save_screenshot(SHOT)
    finally:
        stop.set()
        t.join(10)
    assert os.path.getsize(SHOT) > 10000

    # add a replica through the page
    click(browser, "#add button")
    wait_for(lambda: len(rep_names(lb.port)) == 4, 15, "/add from the page")
    wait_for(lambda: sorted(rows(browser)) == rep_names(lb.port), 10,
             "the new replica on the page")

    # kill one: ringlb replaces it at once (too fast to catch between two
    # polls), and the page lists both events
    os.kill(children(lb.pid)["Server 2"], signal.SIGKILL)
    wait_for(lambda: "evicted" in texts(browser, "#events")[0], 10,
             "the eviction among the events")
    wait_for(lambda: "respawned" in texts(browser, "#events")[0], 10,
             "the replacement among the events")
    wait_for(lambda: rows(browser).get("Server 2") == "up", 10,
             "the replacement up")

    # remove one through the page
    click(browser, '#replicas tr[data-name="Server 4"] button.rm')
    wait_for(lambda: "Server 4" not in rep_names(lb.port), 10, "/rm from the page")
    wait_for(lambda: "Server 4" not in rows(browser), 10, "the row gone")
    assert "removed" in texts(browser, "#events")[0]


def test_dashboard_shows_a_dead_replica(procs, browser):
    reps = [procs.replica("r%d" % i) for i in (1, 2, 3)]
    lb = procs.ringlb(reps)
    browser.get("http://127.0.0.1:%d/dashboard" % lb.port)
    wait_for(lambda: rows(browser) == {"r1": "up", "r2": "up", "r3": "up"},
             10, "3 replicas up on the page")
    # a static replica is not replaced: killed, it stays down on the page
    reps[1].kill()
    reps[1].wait()
    wait_for(lambda: rows(browser).get("r2") == "down", 10,
             "the killed replica shown down")
    assert "evicted" in texts(browser, "#events")[0]
    assert rows(browser)["r1"] == rows(browser)["r3"] == "up"


def test_dashboard_asks_for_the_token(procs, browser):
    from selenium.common.exceptions import NoAlertPresentException
    lb = procs.ringlb(healthy=3, env={"RINGLB_ADMIN_TOKEN": "dash-token-123"})
    browser.get("http://127.0.0.1:%d/dashboard" % lb.port)
    wait_for(lambda: len(rows(browser)) == 3, 10, "3 replicas on the page")
    click(browser, "#add button")

    def prompt():
        try:
            return browser.switch_to.alert
        except NoAlertPresentException:
            return None

    alert = wait_for(prompt, 10, "the page to ask for the token")
    assert "token" in alert.text
    alert.send_keys("dash-token-123")
    alert.accept()
    wait_for(lambda: len(rep_names(lb.port)) == 4, 15, "/add with the token")
    wait_for(lambda: "added 1" in texts(browser, "#msg")[0], 5, "the page's word")


def test_dashboard_is_self_contained(procs):
    lb = procs.ringlb(healthy=3)
    r = get(lb.port, "/dashboard")
    assert r.status == 200
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    page = r.body.decode()
    # the browser is told not to ask for /favicon.ico, which would be
    # forwarded to a replica
    icon = '<link rel="icon" href="data:,">'
    assert icon in page
    page = page.replace(icon, "")
    # nothing is loaded from elsewhere: no external scripts, styles or fonts
    for needle in ("http://", "https://", "<link", "src=", "@import", "url("):
        assert needle not in page.replace('"http://www.w3.org/2000/svg"', ""), needle
    st = get(lb.port, "/status?key=7").json()
    assert [r["name"] for r in st["replicas"]] == rep_names(lb.port)
    assert st["lookup"]["owner"] == get(lb.port, "/map_request?id=7").json()["mapped_server"]
    assert 0 <= st["lookup"]["position"] < 1
    assert abs(sum(r["share"] for r in st["replicas"]) - 1) < 1e-6
    assert [e["kind"] for e in st["events"]] == ["joined"] * 3


def test_dashboard_fits_a_phone(procs, browser):
    """At 390 px wide nothing scrolls sideways: every row's remove button
    and the message line are on screen, and the placeholders fit."""
    lb = procs.ringlb(healthy=3)
    browser.set_window_size(390, 844)
    browser.get("http://127.0.0.1:%d/dashboard" % lb.port)
    wait_for(lambda: len(rows(browser)) == 3, 10, "3 replicas on the page")
    width = js(browser, "return document.documentElement.clientWidth")
    assert width <= 390
    wide = js(browser, "return [...document.querySelectorAll('.scroll')]"
              ".map(e => e.scrollWidth - e.clientWidth)")
    assert wide == [0], wide
    assert js(browser, "return document.documentElement.scrollWidth") <= width
    rights = js(browser, "return [...document.querySelectorAll("
                "'#replicas button.rm')].map(b => b.getBoundingClientRect()"
                ".right)")
    assert len(rights) == 3 and max(rights) <= width, (rights, width)
    assert js(browser, "return document.getElementById('msg')"
              ".getBoundingClientRect().right") <= width
    # each placeholder's text fits its box
    for sel in ("#key", "#add-names"):
        need, have = js(browser, """
            const e = document.querySelector(arguments[0]);
            const cs = getComputedStyle(e);
            const c = document.createElement('canvas').getContext('2d');
            c.font = cs.font;
            return [c.measureText(e.placeholder).width,
                    e.clientWidth - parseFloat(cs.paddingLeft) -
                    parseFloat(cs.paddingRight)];""", sel)
        assert need <= have, (sel, need, have)
    # names with spaces go through the form, split on commas
    js(browser, "document.getElementById('add-names').value = "
       "'Server 4, S5'")
    click(browser, "#add button")
    wait_for(lambda: "Server 4" in rep_names(lb.port), 15, "/add from the page")
    assert "S5" in rep_names(lb.port)


def colours(driver):
    """{replica: its swatch's colour} as drawn."""
    return dict(js(driver, "return [...document.querySelectorAll("
                   "'#replicas tr')].map(tr => [tr.dataset.name, "
                   "getComputedStyle(tr.querySelector('.sw'))"
                   ".backgroundColor])"))


def tick_colours(driver):
    return set(js(driver, "return [...document.querySelectorAll("
                  "'#ring line.tick')].map(l => getComputedStyle(l).stroke)"))


def test_dashboard_colours_stay_with_their_replica(procs, browser):
    """A replica's colour is its own: adding or removing others does not
    change it; the ring's ticks use the same colours; the names field is
    emptied after a good add and kept after a refused one."""
    from conftest import post_json
    lb = procs.ringlb(healthy=3)
    browser.set_window_size(390, 844)
    browser.get("http://127.0.0.1:%d/dashboard" % lb.port)
    wait_for(lambda: len(rows(browser)) == 3, 10, "3 replicas on the page")
    first = colours(browser)
    assert len(set(first.values())) == 3, first
    assert tick_colours(browser) == set(first.values())

    # add two through the page, one named with spaces and sorting first
    js(browser, "document.getElementById('add-n').value = '2';"
       "document.getElementById('add-names').value = 'Aaa 5, Zzz 9'")
    click(browser, "#add button")
    wait_for(lambda: len(rows(browser)) == 5, 15, "two more on the page")
    wait_for(lambda: "added" in texts(browser, "#msg")[0], 5, "the page's word")
    assert js(browser, "return document.getElementById('add-names').value") == ""
    now = colours(browser)
    for name, c in first.items():
        assert now[name] == c, (name, first, now)
    assert len(set(now.values())) == 5, now
    assert tick_colours(browser) == set(now.values())

    # remove the first of the original three (through the API): the others
    # keep theirs
    gone = sorted(first)[0]
    assert post_json(lb.port, "/rm", {"n": 1, "hostnames": [gone]},
                     method="DELETE").status == 200
    wait_for(lambda: gone not in rows(browser), 10, "the row gone")
    later = colours(browser)
    for name, c in now.items():
        if name != gone:
            assert later[name] == c, (name, now, later)

    # a refused add keeps what was typed, and says why
    js(browser, "document.getElementById('add-n').value = '1';"
       "document.getElementById('add-names').value = 'Aaa 5'")
    click(browser, "#add button")
    wait_for(lambda: js(browser, "return document.getElementById('msg')"
                        ".className") == "err", 10, "the refusal shown")
    assert js(browser, "return document.getElementById('add-names').value") \
        == "Aaa 5"
    assert len(rep_names(lb.port)) == 4


def test_dashboard_counts_read_right(procs, browser):
    """'1 connection', '1 replica': the summary's words agree with their
    numbers, for what /status says now and for a status with ones."""
    import re
    lb = procs.ringlb(healthy=3)
    browser.get("http://127.0.0.1:%d/dashboard" % lb.port)
    wait_for(lambda: len(rows(browser)) == 3, 10, "3 replicas on the page")

    def agrees(text):
        for n, word in re.findall(r"(\d+) (replicas?|connections?)\b", text):
            if (n == "1") != (not word.endswith("s")):
                return False
        return True

    summary = texts(browser, "#summary")[0]
    assert "3 replicas" in summary and agrees(summary), summary
    # the page as it draws a ringlb with one replica and one connection
    js(browser, """
        const real = window.fetch;
        window.fetch = async (url, opts) => {
            const res = await real(url, opts);
            if (!String(url).startsWith('/status')) return res;
            const st = await res.json();
            st.replicas = st.replicas.slice(0, 1);
            st.totals.connections = 1;
            return new Response(JSON.stringify(st),
                { headers: { 'Content-Type': 'application/json' } });
        };""")
    wait_for(lambda: len(rows(browser)) == 1, 10, "the one-replica status")
    n = polls(browser)
    wait_for(lambda: polls(browser) > n, 5, "one more poll")
    summary = texts(browser, "#summary")[0]
    assert summary.startswith("1 replica,"), summary
    assert summary.endswith("1 connection"), summary
