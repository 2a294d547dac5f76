#!/usr/bin/python3
"""The envrun web console in headless Chromium (selenium + chromedriver, Debian packages).

Drives the page served by a real `envrun serve` (started by tests/integration/t_console.sh)
the way an administrator would: a wrong token is refused with a visible error; an admin adds
a bundle; an operator starts an instance of it and sees it running, is refused publishing
(403, shown), an admin publishes version 2, the operator upgrades the instance and sees
version 2 on it, stops it and sees it stopped; the operator's token revoked meanwhile sends
the page back to its login form. Every wait is bounded; on a failure the page
is saved (screenshot, HTML, browser console) into --shots and the script exits 1.

usage: test_console.py --url https://127.0.0.1:PORT/ --admin-token T --op-token T
                       --bundle-v1 DIR --bundle-v2 DIR --shots DIR [--id web1]
"""
import argparse
import json
import os
import re
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                        TimeoutException, WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

CHECKS = 0


class Failed(Exception):
    pass


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--admin-token", required=True)
    p.add_argument("--op-token", required=True)
    p.add_argument("--op-name", default="op", help="the operator token's name (revoked at the end)")
    p.add_argument("--bundle-name", default="app")
    p.add_argument("--bundle-v1", required=True)
    p.add_argument("--bundle-v2", required=True)
    p.add_argument("--id", default="web1")
    p.add_argument("--mode", default="restart", choices=["auto", "restart", "checkpoint"])
    p.add_argument("--shots", required=True)
    p.add_argument("--timeout", type=float, default=30.0, help="longest wait for any one thing")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    return p.parse_args()


def browser(a):
    o = webdriver.ChromeOptions()
    o.binary_location = a.chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--ignore-certificate-errors", "--window-size=1500,1100", "--no-first-run",
                "--disable-extensions", "--user-data-dir=" + os.path.join(a.shots, "profile")):
        o.add_argument(arg)
    o.set_capability("goog:loggingOptions", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(a.chromedriver), options=o)
    d.set_page_load_timeout(a.timeout)
    d.set_script_timeout(a.timeout)
    return d


class Console:
    """The page, through its ids and data-test attributes (agent/console/index.html, app.js)."""

    def __init__(self, d, a):
        self.d, self.a = d, a

    def wait(self, what, cond, timeout=None, error_ends=True):
        """Wait until cond() is truthy (exceptions of vanished elements count as not yet);
        an error in the page's error area ends the wait at once unless error_ends is False."""
        w = WebDriverWait(self.d, timeout or self.a.timeout, poll_frequency=0.2,
                          ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))

        def ready():
            if cond():
                return True
            if error_ends and self.error_text():
                raise Failed(f"while waiting for {what}, the error area shows: {self.error_text()}")
            return False
        try:
            return w.until(lambda _: ready())
        except TimeoutException:
            raise Failed(f"timed out after {timeout or self.a.timeout:.0f} s waiting for {what}; "
                         f"error area: [{self.error_text()}]; notice: [{self.text('notice')}]")

    def by_id(self, i):
        return self.d.find_element(By.ID, i)

    def shown(self, i):
        try:
            return self.by_id(i).is_displayed()
        except NoSuchElementException:
            return False

    def text(self, i):
        try:
            e = self.by_id(i)
            return e.text if e.is_displayed() else ""
        except (NoSuchElementException, StaleElementReferenceException):
            return ""

    def error_text(self):
        return self.text("error-text") if self.shown("error") else ""

    def row(self, kind, key):
        attr = "data-name" if kind == "bundle" else "data-id"
        return self.d.find_element(By.CSS_SELECTOR, f'tr[data-test="{kind}-row"][{attr}="{key}"]')

    def cell(self, kind, key, test):
        return self.row(kind, key).find_element(By.CSS_SELECTOR, f'[data-test="{test}"]')

    def cell_text(self, kind, key, test):
        try:
            return self.cell(kind, key, test).text.strip()
        except (NoSuchElementException, StaleElementReferenceException):
            return None

    def fill(self, element, value):
        element.clear()
        element.send_keys(value)

    def click(self, kind, key, test):
        self.cell(kind, key, test).click()

    # ---- session
    def login(self, token, expect_ok=True):
        self.wait("the login form", lambda: self.shown("login-form"), error_ends=False)
        self.fill(self.by_id("token-input"), token)
        self.by_id("login-btn").click()
        if expect_ok:
            self.wait("the main view after login", lambda: self.shown("main-view"))
            self.wait("the first refresh of the tables", lambda: self.text("instances-updated"))

    def logout(self):
        self.by_id("logout-btn").click()
        self.wait("the login form after logout", lambda: self.shown("login-form") and not self.shown("main-view"),
                  error_ends=False)

    def no_error(self, after):
        e = self.error_text()
        if e:
            raise Failed(f"after {after}, the error area shows: {e}")


def step(name, fn, page):
    global CHECKS
    CHECKS += 1
    t0 = time.monotonic()
    try:
        fn()
    except (Failed, WebDriverException, AssertionError) as e:
        print(f"FAIL - {name}\n       {type(e).__name__}: {str(e).strip()}", flush=True)
        save_evidence(page, name)
        raise SystemExit(1)
    print(f"ok   - {name} ({time.monotonic() - t0:.1f} s)", flush=True)


def save_evidence(page, name):
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]
    base = os.path.join(page.a.shots, f"{CHECKS:02d}-{slug}")
    try:
        page.d.save_screenshot(base + ".png")
        with open(base + ".html", "w") as f:
            f.write(page.d.page_source)
        with open(base + ".console.json", "w") as f:
            json.dump(page.d.get_log("browser"), f, indent=1)
        print(f"       saved {base}.png, .html, .console.json", flush=True)
    except WebDriverException as e:
        print(f"       could not save the page: {e}", flush=True)


def expect(cond, message):
    if not cond:
        raise Failed(message)


def run(page):
    a, d = page.a, page.d
    name, iid = a.bundle_name, a.id

    def open_page():
        d.get(a.url)
        page.wait("the login form", lambda: page.shown("login-form"), error_ends=False)
        expect(not page.shown("main-view"), "the main view is shown before any login")
        expect(d.title == "envrun console", f"page title [{d.title}]")
    step("the agent serves the console page; it asks for a token", open_page, page)

    def wrong_token():
        page.login("not-a-valid-token-" + "x" * 20, expect_ok=False)
        page.wait("an error for the wrong token", lambda: "401" in page.error_text(), error_ends=False)
        expect(page.shown("login-form") and not page.shown("main-view"), "a wrong token reached the main view")
        expect(d.execute_script("return sessionStorage.getItem('envrun.token')") is None,
               "the refused token stays in sessionStorage")
    step("a wrong token is refused with a visible 401 error", wrong_token, page)

    def admin_adds():
        page.login(a.admin_token)
        page.wait("the error area cleared by the good login", lambda: not page.error_text(), error_ends=False)
        page.fill(page.by_id("add-bundle-name"), name)
        page.fill(page.by_id("add-bundle-source"), a.bundle_v1)
        page.by_id("add-bundle-btn").click()
        page.wait(f"bundle {name} with version 1 in the table",
                  lambda: page.cell_text("bundle", name, "bundle-version") == "1")
        page.no_error("adding the bundle")
        page.logout()
    step(f"an admin adds bundle {name} from a directory; it shows version 1", admin_adds, page)

    def op_starts():
        page.login(a.op_token)
        page.wait(f"bundle {name} in the operator's table", lambda: page.cell_text("bundle", name, "bundle-version") == "1")
        page.fill(page.cell("bundle", name, "start-id"), iid)
        page.click("bundle", name, "start-btn")
        page.wait(f"{iid} running", lambda: page.cell_text("instance", iid, "instance-status") == "running",
                  timeout=a.timeout * 2)
        expect(page.cell_text("instance", iid, "instance-version") == "1",
               f"{iid} version [{page.cell_text('instance', iid, 'instance-version')}], want 1")
        expect(page.cell_text("instance", iid, "instance-bundle") == name, f"{iid} bundle column")
        pid = page.cell_text("instance", iid, "instance-pid")
        expect(pid and pid.isdigit() and int(pid) > 1, f"{iid} pid column [{pid}]")
        page.no_error(f"starting {iid}")
    step(f"an operator starts instance {iid} of {name} and sees it running (version 1, a pid)", op_starts, page)

    def table_refreshes():
        before = page.text("instances-updated")
        page.wait("the tables' next refresh (every 2 s)", lambda: page.text("instances-updated") != before, timeout=10)
        mem = page.cell_text("instance", iid, "instance-mem")
        cpu = page.cell_text("instance", iid, "instance-cpu")
        expect(mem and cpu, f"usage columns: cpu [{cpu}] mem [{mem}]")
    step("the tables refresh by themselves and show the instance's usage columns", table_refreshes, page)

    def op_refused_publish():
        page.fill(page.cell("bundle", name, "publish-source"), a.bundle_v2)
        page.click("bundle", name, "publish-btn")
        page.wait("the 403 of an operator's publish", lambda: "403" in page.error_text(), error_ends=False)
        expect(page.cell_text("bundle", name, "bundle-version") == "1", "the refused publish changed the version")
        page.logout()
    step("an operator may not publish: the 403 is shown, nothing changes", op_refused_publish, page)

    def admin_publishes():
        page.login(a.admin_token)
        page.wait(f"bundle {name} in the table", lambda: page.cell_text("bundle", name, "bundle-version") == "1")
        page.fill(page.cell("bundle", name, "publish-source"), a.bundle_v2)
        page.click("bundle", name, "publish-btn")
        page.wait(f"{name} current version 2", lambda: page.cell_text("bundle", name, "bundle-version") == "2")
        versions = page.cell_text("bundle", name, "bundle-versions")
        expect(versions == "1, 2", f"versions column [{versions}], want [1, 2]")
        expect(page.cell_text("instance", iid, "instance-version") == "1", f"{iid} moved without an upgrade")
        page.no_error("publishing version 2")
        page.logout()
    step(f"an admin publishes version 2 of {name}; the instance stays on version 1", admin_publishes, page)

    def op_upgrades():
        page.login(a.op_token)
        page.wait(f"instance {iid} in the table", lambda: page.cell_text("instance", iid, "instance-version") == "1")
        page.wait(f"version 2 offered for {iid}", lambda: "2" in [
            o.get_attribute("value") for o in Select(page.cell("instance", iid, "upgrade-version")).options])
        Select(page.cell("instance", iid, "upgrade-version")).select_by_value("2")
        Select(page.cell("instance", iid, "upgrade-mode")).select_by_value(a.mode)
        old_pid = page.cell_text("instance", iid, "instance-pid")
        page.click("instance", iid, "upgrade-btn")
        page.wait(f"{iid} on version 2", lambda: page.cell_text("instance", iid, "instance-version") == "2",
                  timeout=a.timeout * 3)
        page.wait(f"{iid} running after the upgrade",
                  lambda: page.cell_text("instance", iid, "instance-status") == "running")
        page.no_error(f"upgrading {iid}")
        new_pid = page.cell_text("instance", iid, "instance-pid")
        if a.mode == "restart":
            expect(new_pid != old_pid, f"a restart upgrade kept pid {old_pid}")
    step(f"the operator upgrades {iid} to version 2 ({a.mode}) and sees version 2, running", op_upgrades, page)

    def op_stops():
        page.click("instance", iid, "instance-stop")
        page.wait(f"{iid} stopped", lambda: page.cell_text("instance", iid, "instance-status") == "stopped",
                  timeout=a.timeout * 2)
        page.no_error(f"stopping {iid}")
        expect(page.cell("instance", iid, "instance-start").is_displayed(), "no Start button on a stopped instance")
    step(f"the operator stops {iid} and sees it stopped", op_stops, page)

    def chart():
        opts = [o.get_attribute("value") for o in Select(page.by_id("usage-bundle")).options]
        expect(name in opts, f"usage bundle choices {opts}")
        page.wait("the usage chart drawn or its note", lambda: (
            page.d.find_elements(By.CSS_SELECTOR, '#usage-chart [data-test="usage-bar"]') or
            page.d.find_elements(By.CSS_SELECTOR, '#usage-chart [data-test="usage-empty"]')))
        expect(not page.text("usage-note").startswith("GET "), f"usage request failed: {page.text('usage-note')}")
    step("the usage chart is drawn for the bundle from /v1/usage", chart, page)

    def revoked():
        status = api_call(a, "DELETE", f"/v1/tokens/{a.op_name}", a.admin_token)
        expect(status == 200, f"DELETE /v1/tokens/{a.op_name} with the admin token: {status}")
        page.wait("the login form after the token's revocation (next refresh)",
                  lambda: page.shown("login-form") and not page.shown("main-view"), timeout=15, error_ends=False)
        expect("401" in page.error_text(), f"error area after the revocation: [{page.error_text()}]")
        expect(d.execute_script("return sessionStorage.getItem('envrun.token')") is None,
               "the revoked token stays in sessionStorage")
    step("a token revoked during the session sends the page back to the login form (401 shown)", revoked, page)


def api_call(a, method, path, token):
    """One API request outside the browser (the agent's certificate is self-signed)."""
    import ssl
    import urllib.error
    import urllib.request
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(a.url.rstrip("/") + path, method=method,
                                 headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=a.timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    a = parse_args()
    os.makedirs(a.shots, exist_ok=True)
    try:
        d = browser(a)
    except WebDriverException as e:
        print(f"FAIL - headless Chromium starts\n       {e}", flush=True)
        return 1
    try:
        run(Console(d, a))
    finally:
        d.quit()
    print(f"test_console: all {CHECKS} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
