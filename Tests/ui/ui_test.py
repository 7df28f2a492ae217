"""Browser tests of the web dashboard (/ui), driven by run-ui-tests.sh against a real
`nova-host serve`: headless Chromium through Selenium, plus raw HTTP (urllib) for what a
browser would not do (forged posts) and for the headers and HTML of every page."""
import html.parser
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import html5lib
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

URL = os.environ["NOVA_URL"]
ADMIN_KEY, ALICE_KEY, BOB_KEY = os.environ["NOVA_ADMIN_KEY"], os.environ["NOVA_ALICE_KEY"], os.environ["NOVA_BOB_KEY"]
ARTIFACTS = os.environ["NOVA_UI_ARTIFACTS"]
RESULTS = []


def check(name, condition, detail=""):
    """Records one test; prints `ok NAME` or `FAIL NAME: detail` (run-ui-tests.sh counts them)."""
    RESULTS.append(bool(condition))
    print(f"ok {name}" if condition else f"FAIL {name}: {str(detail)[:600]}", flush=True)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def http(method, path, key=None, body=None, form=None, cookie=None, headers=None):
    """One request, redirects not followed; returns (status, headers, body text or JSON)."""
    data, hdrs = None, dict(headers or {})
    if body is not None:
        data, hdrs["Content-Type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data, hdrs["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    if key:
        hdrs["Authorization"] = f"Bearer {key}"
    if cookie:
        hdrs["Cookie"] = cookie
    req = urllib.request.Request(URL + path, data=data, method=method, headers=hdrs)
    try:
        with OPENER.open(req, timeout=30) as r:
            raw, status, rh = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, status, rh = e.read(), e.code, e.headers
    text = raw.decode(errors="replace")
    try:
        return status, rh, json.loads(text)
    except ValueError:
        return status, rh, text


def submit(key, plan):
    status, _, body = http("POST", "/v1/runs", key, {"plan": plan})
    assert status == 202, (status, body)
    return body["run_id"]


def wait_run(key, run_id):
    for _ in range(1500):
        _, _, body = http("GET", f"/v1/runs/{run_id}", key)
        if body.get("status") not in ("queued", "running") and body.get("episode"):
            return body
        time.sleep(0.02)
    return body


def browser(width=1280, height=800, phone=False):
    """Headless Chromium with a 1280x800 window, or emulating a 390x844 phone (a headless window
    cannot be narrower than 500 px)."""
    options = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}"]:
        options.add_argument(arg)
    if phone:
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0}})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if os.path.exists("/usr/bin/chromium"):
        options.binary_location = "/usr/bin/chromium"
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver") if os.path.exists("/usr/bin/chromedriver") else None
    return webdriver.Chrome(options=options, service=service) if service else webdriver.Chrome(options=options)


def login(driver, key):
    driver.get(URL + "/ui/login")
    field = driver.find_element(By.ID, "credential")
    field.send_keys(key)
    field.send_keys(Keys.ENTER)
    WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "whoami")))


def live_row_reaches(driver, run_id, status):
    """Whether the live runs list shows `run_id`'s row with `status` (inserted by the stream)."""
    try:
        WebDriverWait(driver, 20).until(lambda d: status in d.find_element(By.ID, f"run-{run_id}").text)
        return True
    except Exception:  # noqa: BLE001
        return False


def cookie_of(driver):
    c = driver.get_cookie("nova_session")
    return f"nova_session={c['value']}" if c else ""


def shot(driver, name):
    """Saves the whole page (the window is stretched to the page's height for the shot)."""
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    stretch = size["width"] >= 1000 and height > size["height"]
    if stretch:
        driver.set_window_size(size["width"], min(height + 20, 5000))
    driver.save_screenshot(os.path.join(ARTIFACTS, f"{name}.png"))
    if stretch:
        driver.set_window_size(size["width"], size["height"])


def csp_violations(driver):
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


class IdCollector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.labels_for, self.controls = [], set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "label" and "for" in a:
            self.labels_for.add(a["for"])
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a.get("id"))
        if "style" in a or any(k.startswith("on") for k in a):
            self.ids.append("!inline:" + tag)


PAGES_CHECKED = []


def check_page(name, path, cookie, method="GET", form=None, expect=200):
    """The response's status, CSP header, strict HTML5 parse, unique ids, labelled controls,
    no inline style or handler attributes."""
    status, headers, text = http(method, path, cookie=cookie, form=form)
    csp = headers.get("Content-Security-Policy", "")
    check(f"page {name}: status {expect}", status == expect, (status, str(text)[:300]))
    check(f"page {name}: CSP without unsafe-inline, scripts and styles from 'self'",
          "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp, csp)
    try:
        html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)
        check(f"page {name}: valid HTML5 (html5lib strict parse)", True)
    except Exception as e:  # noqa: BLE001 - html5lib raises ParseError subclasses
        check(f"page {name}: valid HTML5 (html5lib strict parse)", False, e)
    ids = IdCollector()
    ids.feed(text)
    dupes = sorted({i for i in ids.ids if ids.ids.count(i) > 1})
    check(f"page {name}: ids unique, no inline style or event handler attributes",
          not dupes and not any(i.startswith("!inline") for i in ids.ids), dupes + [i for i in ids.ids if i.startswith("!inline")])
    unlabelled = [c for c in ids.controls if c is None or c not in ids.labels_for]
    check(f"page {name}: every form control has a label", not unlabelled, unlabelled)
    PAGES_CHECKED.append(name)
    return text


def main():
    os.makedirs(ARTIFACTS, exist_ok=True)
    two_steps = {"name": "ui-two-steps", "steps": [{"id": "first", "call": "echo.echo", "input": {"n": 1}},
                                                   {"id": "second", "call": "echo.echo", "input": {"n": 2}}]}
    denied_plan = {"name": "ui-denied", "steps": [{"id": "only", "call": "echo.fail", "input": {}}]}

    # The login page, and a wrong credential.
    status, headers, _ = http("GET", "/ui")
    check("ui without a session redirects to the login page", status == 303 and headers.get("Location", "").startswith("/ui/login"), (status, dict(headers)))
    check_page("login", "/ui/login", None)

    alice = browser()
    admin = browser()
    try:
        alice.get(URL + "/ui/login")
        alice.find_element(By.ID, "credential").send_keys("not-a-key" + Keys.ENTER)
        err = WebDriverWait(alice, 10).until(EC.presence_of_element_located((By.ID, "login-error")))
        check("a wrong credential is refused on the login page", "not accepted" in err.text, err.text)
        shot(alice, "login-refused")

        # Keyboard: the login page focuses the credential field.
        alice.get(URL + "/ui/login")
        # `autofocus` is applied after the page loads, so wait for it rather than read at once.
        try:
            WebDriverWait(alice, 10).until(lambda d: d.switch_to.active_element.get_attribute("id") == "credential")
        except Exception:
            pass
        check("keyboard: the login page opens with the credential field focused",
              alice.switch_to.active_element.get_attribute("id") == "credential", alice.switch_to.active_element.get_attribute("outerHTML"))

        login(alice, ALICE_KEY)
        # Keyboard: on a page, the first Tab reaches the skip link, and following it focuses the content.
        alice.get(URL + "/ui/runs")
        ActionChains(alice).send_keys(Keys.TAB).perform()
        focused = alice.switch_to.active_element
        check("keyboard: the first Tab reaches the skip link", focused.get_attribute("class") == "skip", focused.get_attribute("outerHTML"))
        ActionChains(alice).send_keys(Keys.ENTER).perform()
        check("keyboard: the skip link moves the focus to the content", alice.switch_to.active_element.get_attribute("id") == "main",
              alice.switch_to.active_element.get_attribute("outerHTML")[:200])
        login(admin, ADMIN_KEY)
        check("login as alice sets an HttpOnly, SameSite=Strict session cookie",
              (c := alice.get_cookie("nova_session")) is not None and c.get("httpOnly") and c.get("sameSite") == "Strict", alice.get_cookie("nova_session"))
        check("the overview names the signed-in principal", "alice" in alice.find_element(By.ID, "whoami").text)
        alice_cookie, admin_cookie = cookie_of(alice), cookie_of(admin)

        # Live runs: a run submitted over REST appears without a reload.
        alice.get(URL + "/ui/runs")
        WebDriverWait(alice, 10).until(lambda d: d.find_element(By.ID, "runs").get_attribute("data-live") == "connected")
        alice.execute_script("window.__noReload = 42;")
        run_id = submit(ALICE_KEY, two_steps)
        try:
            WebDriverWait(alice, 20).until(EC.presence_of_element_located((By.ID, f"run-{run_id}")))
            appeared = True
        except Exception:  # noqa: BLE001
            appeared = False
        check("a run submitted over REST appears on the runs page without a reload",
              appeared and alice.execute_script("return window.__noReload;") == 42, alice.page_source[-1500:])
        run = wait_run(ALICE_KEY, run_id)
        check("the run succeeds", run.get("status") == "succeeded", run)
        try:
            WebDriverWait(alice, 10).until(lambda d: "succeeded" in d.find_element(By.ID, f"run-{run_id}").text)
            updated = True
        except Exception:  # noqa: BLE001
            updated = False
        check("the live row follows the run to succeeded", updated)
        shot(alice, "runs")

        # The run page: a timeline bar and a table row per step, each with its decision and rule.
        alice.find_element(By.CSS_SELECTOR, f"#run-{run_id} a").click()
        WebDriverWait(alice, 10).until(EC.presence_of_element_located((By.ID, "steps")))
        rows = alice.find_elements(By.CSS_SELECTOR, "#steps tbody tr.step")
        steps = [(r.get_attribute("data-step"), r.find_element(By.CSS_SELECTOR, ".decision").text, r.find_element(By.CSS_SELECTOR, ".rule").text) for r in rows]
        check("the run page lists every step with its decision and rule",
              steps == [("first", "allow", "users-echo"), ("second", "allow", "users-echo")], steps)
        bars = alice.find_elements(By.CSS_SELECTOR, "#timeline rect.bar")
        check("the timeline draws one bar per attempt", len(bars) == 2, len(bars))
        check("the run page shows the hash-chain position", alice.find_element(By.ID, "episode-seq").text == str(run["episode"]["seq"])
              and alice.find_element(By.ID, "episode-hash").text == run["episode"]["hash"], run["episode"])
        shot(alice, "run")
        alice.find_element(By.ID, "verify").click()
        result = WebDriverWait(alice, 10).until(EC.presence_of_element_located((By.ID, "verify-result")))
        check("verify checks the stored episode", result.text.startswith("Verified"), result.text)
        shot(alice, "run-verified")
        check("no CSP violation in the browser console (alice)", not csp_violations(alice), csp_violations(alice))

        # A denied step shows its deciding rule.
        denied_id = submit(ALICE_KEY, denied_plan)
        wait_run(ALICE_KEY, denied_id)
        alice.get(URL + f"/ui/runs/{denied_id}")
        rows = alice.find_elements(By.CSS_SELECTOR, "#steps tbody tr.step")
        got = [(r.find_element(By.CSS_SELECTOR, ".decision").text, r.find_element(By.CSS_SELECTOR, ".rule").text) for r in rows]
        check("a denied step shows deny and the rule that decided", got == [("deny", "no-fail-for-users")], got)
        shot(alice, "run-denied")

        # Cancel a running run from its page.
        slow_id = submit(ALICE_KEY, {"name": "ui-slow", "steps": [{"id": "nap", "call": "echo.sleep", "input": {"ms": 30000}}]})
        alice.get(URL + f"/ui/runs/{slow_id}")
        button = WebDriverWait(alice, 10).until(EC.presence_of_element_located((By.ID, "cancel-run")))
        shot(alice, "run-in-flight")
        button.click()
        WebDriverWait(alice, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.notice")))
        slow = wait_run(ALICE_KEY, slow_id)
        check("cancelling a run from its page records it cancelled", slow.get("status") == "cancelled", slow)

        # Another principal's run: not listed, not shown.
        bob_run = submit(BOB_KEY, two_steps)
        wait_run(BOB_KEY, bob_run)
        alice.get(URL + "/ui/runs")
        check("alice's runs list does not show bob's run", not alice.find_elements(By.ID, f"run-{bob_run}"))
        status, _, _ = http("GET", f"/ui/runs/{bob_run}", cookie=alice_cookie)
        check("alice gets 404 for bob's run page", status == 404, status)
        admin.get(URL + f"/ui/runs/{bob_run}")
        check("an admin sees bob's run", admin.find_elements(By.ID, "steps"))
        admin.get(URL + "/ui/runs")
        admin.find_element(By.ID, "principal").send_keys("bob" + Keys.ENTER)
        WebDriverWait(admin, 10).until(EC.url_contains("principal=bob"))
        listed = [r.get_attribute("id") for r in admin.find_elements(By.CSS_SELECTOR, "#runs tbody tr")]
        check("an admin filters the runs list by principal", listed == [f"run-{bob_run}"], listed)
        check("a user has no principal filter", not alice.find_elements(By.ID, "principal"))
        status, _, _ = http("GET", "/ui/runs?principal=bob", cookie=alice_cookie)
        check("a user asking for another principal's runs is refused 403", status == 403, status)

        # Admin-only: the reload button is absent for alice and refused server-side.
        alice.get(URL + "/ui")
        check("alice's overview has no reload-drivers button", not alice.find_elements(By.ID, "reload-drivers"))
        admin.get(URL + "/ui")
        check("the admin's overview has the reload-drivers button", admin.find_elements(By.ID, "reload-drivers"))
        # The overview's figures come from the index: alice's runs (one denied by no-fail-for-users),
        # her budget window, the charts' bars matching their table, the drivers' health.
        def cells(driver, table_id):
            return [[td.get_attribute("textContent").strip() for td in tr.find_elements(By.TAG_NAME, "td")]
                    for tr in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")]
        runs_total = int(alice.find_element(By.ID, "runs-total").text)
        check("alice's overview counts her recorded runs", runs_total >= 3, runs_total)
        denials = cells(alice, "denials")
        check("the overview lists the denial by rule with its tool", any(r[0] == "no-fail-for-users" and r[1] == "1" and r[2] == "echo.fail"
                                                                      for r in denials), denials)
        bars = alice.find_elements(By.CSS_SELECTOR, "#chart-runs g.bucket")
        data = cells(alice, "chart-data")
        check("the runs chart has one bar per bucket with runs, as its table says", len(bars) >= 1 and len(bars) == len(data), (len(bars), data))
        check("the chart's table adds up to the runs card", sum(int(r[1]) for r in data) == runs_total, (data, runs_total))
        check("the success-rate chart has its points", len(alice.find_elements(By.CSS_SELECTOR, "#chart-success circle.point")) == len(data))
        consumption = cells(alice, "consumption")
        check("alice sees only her own consumption", [r[0] for r in consumption] == ["alice"], consumption)
        budgets = cells(alice, "budgets")
        check("alice's principal budget window shows the calls she used", any(r[0] == "users-daily" and r[1] == "alice" and r[3].endswith("of 100000")
                                                                             and int(r[3].split()[0]) >= 1 for r in budgets), budgets)
        health = cells(alice, "driver-health")
        check("driver health lists the echo driver loaded", any(r[0] == "echo" and r[1] == "loaded" for r in health), health)
        admin_consumption = [r[0] for r in cells(admin, "consumption")]
        check("the admin's overview counts every principal", "alice" in admin_consumption and "bob" in admin_consumption, admin_consumption)
        alice.find_element(By.ID, "window-24h").click()
        WebDriverWait(alice, 10).until(lambda d: d.find_element(By.ID, "window-24h").get_attribute("aria-current") == "page")
        check("the 24-hour window counts the same runs", int(alice.find_element(By.ID, "runs-total").text) == runs_total)
        check("the 24-hour chart has 96 quarter hours", "per 15 minutes" in alice.find_element(By.ID, "chart-runs").find_element(By.TAG_NAME, "title").get_attribute("textContent"))
        shot(alice, "overview-day")
        alice.get(URL + "/ui")
        shot(admin, "overview-admin")
        shot(alice, "overview-user")
        token = alice.find_element(By.CSS_SELECTOR, "form.who input[name=csrf]").get_attribute("value")
        status, _, _ = http("POST", "/ui/drivers/reload", cookie=alice_cookie, form={"csrf": token})
        check("alice's reload post (with a valid CSRF token) is refused 403", status == 403, status)
        admin.find_element(By.ID, "reload-drivers").click()
        try:
            notice = WebDriverWait(admin, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.notice"))).text
        except Exception:  # noqa: BLE001
            notice = admin.page_source[-800:]
        check("the admin reloads drivers from the overview", "Drivers reloaded" in notice, notice)

        # An agent of alice's: pause from its page (with confirmation), verified over REST.
        status, _, agent = http("POST", "/v1/agents", ADMIN_KEY, {"name": "ui-agent", "principal": "alice"})
        check("an agent for alice is created over REST", status == 201, agent)
        alice.get(URL + "/ui/agents")
        alice.find_element(By.LINK_TEXT, "ui-agent").click()
        WebDriverWait(alice, 10).until(EC.presence_of_element_located((By.ID, "agent-pause")))
        shot(alice, "agent")
        alice.find_element(By.ID, "agent-pause").click()
        WebDriverWait(alice, 10).until(EC.presence_of_element_located((By.ID, "confirm")))
        shot(alice, "agent-confirm")
        _, _, before = http("GET", f"/v1/agents/{agent['id']}", ADMIN_KEY)
        check("the pause waits for confirmation", before.get("status") == "active", before)
        alice.find_element(By.ID, "confirm").click()
        WebDriverWait(alice, 10).until(EC.presence_of_element_located((By.ID, "agent-resume")))
        _, _, after = http("GET", f"/v1/agents/{agent['id']}", ALICE_KEY)
        check("pausing from the agent page pauses it (REST says paused)", after.get("status") == "paused", after)
        shot(alice, "agent-paused")

        # Forged posts: no CSRF token, or a wrong one, are refused and change nothing.
        forged = {"confirm": "yes", "version": str(after.get("version"))}
        status, _, body = http("POST", f"/ui/agents/{agent['id']}/resume", cookie=alice_cookie, form=forged)
        check("a forged POST without the CSRF token is refused 403", status == 403, (status, str(body)[:200]))
        status, _, _ = http("POST", f"/ui/agents/{agent['id']}/resume", cookie=alice_cookie, form={**forged, "csrf": "0" * 64})
        check("a POST with a wrong CSRF token is refused 403", status == 403, status)
        _, _, still = http("GET", f"/v1/agents/{agent['id']}", ALICE_KEY)
        check("the forged posts changed nothing", still.get("status") == "paused", still)
        status, _, _ = http("POST", f"/ui/agents/{agent['id']}/resume", form={**forged, "csrf": token})
        check("a POST without a session is refused 401", status == 401, status)
        status, _, _ = http("POST", "/ui/login", form={"credential": ALICE_KEY})
        check("a login POST without the login form's token is refused 403", status == 403, status)

        # Bob cannot see or act on alice's agent.
        bob = browser()
        try:
            login(bob, BOB_KEY)
            bob_cookie = cookie_of(bob)
            status, _, _ = http("GET", f"/ui/agents/{agent['id']}", cookie=bob_cookie)
            check("bob gets 404 for alice's agent page", status == 404, status)
            bob_token = bob.find_element(By.CSS_SELECTOR, "form.who input[name=csrf]").get_attribute("value")
            status, _, _ = http("POST", f"/ui/agents/{agent['id']}/resume", cookie=bob_cookie, form={**forged, "csrf": bob_token})
            check("bob's resume of alice's agent is refused (404)", status == 404, status)
        finally:
            bob.quit()

        # Approvals: alice's call waits; she sees the request but may not decide it; the admin approves it.
        guarded = submit(ALICE_KEY, {"name": "ui-guarded", "steps": [{"id": "pay", "call": "echo.echo", "input": {"amount": 5}, "approval": True}]})
        pending = []
        for _ in range(500):
            _, _, body = http("GET", f"/v1/approvals?run_id={guarded}", ADMIN_KEY)
            pending = body.get("approvals", []) if isinstance(body, dict) else []
            if pending:
                break
            time.sleep(0.02)
        check("a step with approval: true opens an approval request", len(pending) == 1, pending)
        approval_id = pending[0]["id"] if pending else "none"
        alice.get(URL + "/ui/approvals")
        section = alice.find_elements(By.ID, f"approval-{approval_id}")
        check("alice sees her pending request without approve/deny buttons",
              section and not section[0].find_elements(By.CSS_SELECTOR, "button[value=approve]"), alice.page_source[-800:])
        admin.get(URL + "/ui/approvals")
        section = admin.find_element(By.ID, f"approval-{approval_id}")
        check("the approvals page shows the exact call input", '"amount": 5' in section.text and "echo.echo" in section.text, section.text)
        shot(admin, "approvals-pending")
        check_page("approvals (pending, with the decision form)", "/ui/approvals", admin_cookie)
        check_page("run waiting for approval", f"/ui/runs/{guarded}", alice_cookie)
        section.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        WebDriverWait(admin, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.notice")))
        guarded_run = wait_run(ALICE_KEY, guarded)
        check("approving from the page lets the run finish", guarded_run.get("status") == "succeeded", guarded_run)
        _, _, decided = http("GET", f"/v1/approvals/{approval_id}", ADMIN_KEY)
        check("REST records the approval by the admin", decided.get("status") == "approved" and decided.get("decided_by") == "admin", decided)
        alice.get(URL + f"/ui/runs/{guarded}")
        waits = alice.find_elements(By.CSS_SELECTOR, "#timeline rect.bar.status-waiting")
        note = alice.find_elements(By.CSS_SELECTOR, "#steps .approval-note")
        check("the timeline draws the wait for approval, and the step says who approved",
              len(waits) == 1 and note and "approved by admin" in note[0].text, (len(waits), [n.text for n in note]))
        shot(alice, "run-approved")

        # Drivers: every driver with its state and SHA-256 (echo has run, so it is loaded).
        admin.get(URL + "/ui/drivers")
        row = admin.find_elements(By.XPATH, "//table[@id='drivers']//tr[td//span[@id='driver-echo']]")
        cells = [c.text for c in row[0].find_elements(By.TAG_NAME, "td")] if row else []
        check("the drivers page lists the echo driver loaded, with its SHA-256",
              len(cells) > 4 and cells[1] == "loaded" and re.fullmatch(r"[0-9a-f]{64}", cells[4]), cells)
        shot(admin, "drivers-admin")
        alice.get(URL + "/ui/drivers")
        check("alice's drivers page lists echo without the reload button or file paths",
              alice.find_elements(By.ID, "driver-echo") and not alice.find_elements(By.ID, "reload-drivers")
              and not alice.find_elements(By.CSS_SELECTOR, "code.path"), alice.page_source[-600:])
        shot(alice, "drivers-user")
        admin.find_element(By.ID, "reload-drivers").click()
        try:
            notice = WebDriverWait(admin, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.notice"))).text
        except Exception:  # noqa: BLE001
            notice = admin.page_source[-800:]
        check("the admin reloads drivers from the drivers page and lands back on it",
              "Drivers reloaded" in notice and admin.current_url.startswith(URL + "/ui/drivers"), (notice, admin.current_url))

        # Jobs: a goal no rule of its agent's planner matches fails for good (dead job); alice
        # sees it without buttons and her forged retry is refused; the admin retries it.
        planner = {"kind": "rules", "rules": [{"intent": "shout", "words": ["shout"],
                                               "plan": {"name": "ui-shout", "steps": [{"id": "s", "call": "echo.echo", "input": {}}]}}]}
        status, _, dl_agent = http("POST", "/v1/agents", ADMIN_KEY, {"name": "ui-dlq", "principal": "alice", "config": {"planner": planner}})
        check("an agent with a rules planner is created for alice", status == 201, dl_agent)
        status, _, goal = http("POST", f"/v1/agents/{dl_agent.get('id')}/goals", ALICE_KEY, {"goal": "whisper something"})
        dead_id = goal.get("run_id", "none") if isinstance(goal, dict) else "none"
        dead = {}
        for _ in range(600):
            _, _, dead = http("GET", f"/v1/jobs/{dead_id}", ADMIN_KEY)
            if isinstance(dead, dict) and dead.get("state") == "dead":
                break
            time.sleep(0.05)
        check("a goal no planner rule matches ends as a dead job", isinstance(dead, dict) and dead.get("state") == "dead", dead)
        alice.get(URL + "/ui/jobs")
        check("alice sees her dead job in the dead-letter queue without Retry/Discard buttons",
              alice.find_elements(By.ID, f"dead-{dead_id}") and not alice.find_elements(By.ID, f"retry-{dead_id}")
              and not alice.find_elements(By.CSS_SELECTOR, "#dead-jobs button"), alice.page_source[-800:])
        shot(alice, "jobs-user")
        status, _, _ = http("POST", f"/ui/jobs/{dead_id}/retry", cookie=alice_cookie, form={"csrf": token, "confirm": "yes"})
        check("alice's retry post (with a valid CSRF token) is refused 403", status == 403, status)
        status, _, _ = http("POST", f"/ui/jobs/{dead_id}/discard", cookie=alice_cookie, form={"csrf": token, "confirm": "yes"})
        check("alice's discard post (with a valid CSRF token) is refused 403", status == 403, status)
        status, _, _ = http("POST", f"/ui/jobs/{dead_id}/retry", cookie=admin_cookie, form={"confirm": "yes"})
        check("a retry post without the CSRF token is refused 403", status == 403, status)
        _, _, still = http("GET", f"/v1/jobs/{dead_id}", ADMIN_KEY)
        check("the refused posts changed nothing (REST: still dead)", still.get("state") == "dead", still)
        # Paused, the agent holds the retried goal in the queue, so its state can be seen.
        status, _, _ = http("POST", f"/v1/agents/{dl_agent.get('id')}/pause", ADMIN_KEY, {})
        admin.get(URL + "/ui/jobs")
        dlq_before = admin.find_element(By.ID, "dlq-total").text
        shot(admin, "jobs-admin")
        admin.find_element(By.ID, f"retry-{dead_id}").click()
        WebDriverWait(admin, 10).until(EC.presence_of_element_located((By.ID, "confirm")))
        shot(admin, "job-confirm")
        _, _, waiting = http("GET", f"/v1/jobs/{dead_id}", ADMIN_KEY)
        check("the retry waits for confirmation", waiting.get("state") == "dead", waiting)
        admin.find_element(By.ID, "confirm").click()
        try:
            notice = WebDriverWait(admin, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.notice"))).text
        except Exception:  # noqa: BLE001
            notice = admin.page_source[-800:]
        _, _, retried = http("GET", f"/v1/jobs/{dead_id}", ADMIN_KEY)
        check("the admin retries the dead job from the jobs page (REST: available again)",
              "Job retried" in notice and retried.get("state") in ("available", "retryable", "running"), (notice, retried))
        check("the dead-letter count went down", admin.find_element(By.ID, "dlq-total").text == str(int(dlq_before) - 1),
              (dlq_before, admin.find_element(By.ID, "dlq-total").text))
        check("the jobs page counts jobs by queue and state", admin.find_elements(By.ID, "queue-default")
              and admin.find_elements(By.ID, "jobs-succeeded"), admin.page_source[-600:])
        # States move (the retried goal is taken and put back while its agent is paused): compare
        # what does not, the dead jobs and the jobs in all states.
        _, _, rest_dead = http("GET", "/v1/jobs?state=dead&limit=1", ADMIN_KEY)
        _, _, rest_all = http("GET", "/v1/jobs?limit=1", ADMIN_KEY)
        page_dead = admin.find_element(By.ID, "jobs-dead").text
        page_all = sum(int(admin.find_element(By.ID, f"jobs-{state}").text)
                       for state in ("available", "retryable", "running", "succeeded", "dead", "cancelled"))
        check("the admin's counts by state are REST's totals", page_dead == str(rest_dead.get("total")) and page_all == rest_all.get("total"),
              (page_dead, page_all, rest_dead.get("total"), rest_all.get("total")))
        # The jobs in a state, listed from its count (newest first, visibleJobs: a user's own runs' jobs only).
        admin.find_element(By.CSS_SELECTOR, "a[href='/ui/jobs?state=succeeded#jobs-list']").click()
        WebDriverWait(admin, 10).until(EC.presence_of_element_located((By.ID, "jobs-in-state")))
        listed_jobs = [e.text for e in admin.find_elements(By.CSS_SELECTOR, "#jobs-in-state .job-id")]
        _, _, rest_jobs = http("GET", "/v1/jobs?state=succeeded&limit=50", ADMIN_KEY)
        check("a count links to the list of the jobs in that state, as REST lists them",
              listed_jobs == [j["id"] for j in rest_jobs.get("jobs", [])] and bob_run in listed_jobs
              and admin.find_element(By.ID, "jobs-list-total").text == str(rest_jobs.get("total")), (listed_jobs[:5], rest_jobs.get("total")))
        shot(admin, "jobs-succeeded")
        alice.get(URL + "/ui/jobs?state=succeeded")
        alice_jobs = [e.text for e in alice.find_elements(By.CSS_SELECTOR, "#jobs-in-state .job-id")]
        check("alice's list of succeeded jobs has her runs' jobs and not bob's", run_id in alice_jobs and bob_run not in alice_jobs, alice_jobs)
        status, _, _ = http("GET", "/ui/jobs?state=nope", cookie=alice_cookie)
        check("an unknown job state is refused 400", status == 400, status)
        # A subscription with its lag.
        setup = [http("POST", "/v1/topics", ADMIN_KEY, {"name": "ui.events"})[0],
                 http("POST", "/v1/subscriptions", ADMIN_KEY, {"id": "ui-sub", "topic": "ui.events"})[0]]
        setup += [http("POST", "/v1/topics/ui.events/messages", ADMIN_KEY, {"payload": {"n": n}})[0] for n in (1, 2)]
        check("a topic, a subscription and two messages are created over REST", setup == [201, 201, 201, 201], setup)
        admin.get(URL + "/ui/jobs")
        row = admin.find_elements(By.XPATH, "//table[@id='subscriptions']//tr[td//*[@id='sub-ui-sub']]")
        cells = [c.text for c in row[0].find_elements(By.TAG_NAME, "td")] if row else []
        _, _, sub_rest = http("GET", "/v1/subscriptions/ui-sub", ADMIN_KEY)
        lag = str(sub_rest.get("stats", {}).get("lag")) if isinstance(sub_rest, dict) else None
        check("the jobs page lists the bus subscription with its lag as REST reports it",
              len(cells) > 5 and cells[1] == "ui.events" and cells[2] == lag and cells[5] == "0", (cells, sub_rest))
        shot(admin, "jobs-subscriptions")

        # Agents: search (name, id, label) and status filter, through GET /v1/agents's authorization.
        status, _, alpha = http("POST", "/v1/agents", ADMIN_KEY, {"name": "ui-search-alpha", "principal": "alice", "labels": {"team": "blue"}})
        status2, _, beta = http("POST", "/v1/agents", ADMIN_KEY, {"name": "ui-search-beta", "principal": "bob"})
        check("two agents to search are created over REST", (status, status2) == (201, 201), (alpha, beta))
        alpha_id = alpha.get("id", "none") if isinstance(alpha, dict) else "none"

        def agent_rows(driver):
            return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#agents tbody tr td:first-child a")]

        alice.get(URL + "/ui/agents")
        alice.find_element(By.ID, "agent-search").send_keys("alpha" + Keys.ENTER)
        WebDriverWait(alice, 10).until(EC.url_contains("q=alpha"))
        check("agent search by name finds the agent", agent_rows(alice) == ["ui-search-alpha"], agent_rows(alice))
        shot(alice, "agents-search")
        alice.get(URL + "/ui/agents?q=team%3Dblue")
        check("agent search by label (key=value) finds the agent", agent_rows(alice) == ["ui-search-alpha"], agent_rows(alice))
        alice.get(URL + "/ui/agents?q=" + alpha_id[:13])
        check("agent search by id finds the agent", agent_rows(alice) == ["ui-search-alpha"], agent_rows(alice))
        alice.get(URL + "/ui/agents?q=ui-search")
        check("a user's search never lists another principal's agent", agent_rows(alice) == ["ui-search-alpha"], agent_rows(alice))
        admin.get(URL + "/ui/agents?q=ui-search")
        check("an admin's search lists every principal's agents", agent_rows(admin) == ["ui-search-alpha", "ui-search-beta"], agent_rows(admin))
        alice.get(URL + "/ui/agents")
        Select(alice.find_element(By.ID, "agent-status")).select_by_value("paused")
        alice.find_element(By.ID, "agent-search").send_keys(Keys.ENTER)
        WebDriverWait(alice, 10).until(EC.url_contains("status=paused"))
        paused_rows = agent_rows(alice)
        check("the status filter lists only paused agents", "ui-agent" in paused_rows and "ui-search-alpha" not in paused_rows, paused_rows)

        # The agent page: versions, state, memory recall, and a goal submitted from its form.
        http("PATCH", f"/v1/agents/{alpha_id}", ALICE_KEY, {"description": "second version"})
        puts = [http("PUT", f"/v1/agents/{alpha_id}/state/colour", ALICE_KEY, {"value": v})[0] for v in ("red", "blue")]
        mems = [http("POST", f"/v1/agents/{alpha_id}/memory", ALICE_KEY, {"text": t, "tags": ["ui"]})[0]
                for t in ("the warehouse in Lyon restocks on Tuesdays", "penguins prefer cold water")]
        check("a new version, two state writes and two memories are stored over REST", puts == [200, 200] and mems == [201, 201], (puts, mems))
        alice.get(URL + f"/ui/agents/{alpha_id}")
        versions = [e.text for e in alice.find_elements(By.CSS_SELECTOR, "#agent-versions tbody tr td:first-child")]
        changed = [e.text for e in alice.find_elements(By.CSS_SELECTOR, "#agent-versions tbody tr td:last-child")]
        check("the agent page lists its versions, newest first, with what each changed",
              versions == ["2", "1"] and "description" in changed[0] and changed[1] == "created", (versions, changed))
        keys = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in alice.find_elements(By.CSS_SELECTOR, "#state-keys tbody tr")]
        check("the agent page shows its state key at version 2 with its value", len(keys) == 1 and keys[0][0] == "colour" and keys[0][1] == "2"
              and '"blue"' in keys[0][4], keys)
        log = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in alice.find_elements(By.CSS_SELECTOR, "#state-changes tbody tr")]
        check("the agent page shows the state change log, newest first", [r[4] for r in log] == ['"blue"', '"red"'], log)
        recall = alice.find_element(By.ID, "recall")
        recall.send_keys("Lyon" + Keys.ENTER)
        WebDriverWait(alice, 10).until(EC.url_contains("q=Lyon"))
        recalled = [e.text for e in alice.find_elements(By.CSS_SELECTOR, "#memories .memory-text")]
        check("memory recall shows the stored memory that matches, and only it", recalled == ["the warehouse in Lyon restocks on Tuesdays"], recalled)
        _, _, rest_recall = http("GET", f"/v1/agents/{alpha_id}/recall?q=Lyon", ALICE_KEY)
        check("the recall box finds what REST recall finds", [i["text"] for i in rest_recall.get("items", [])] == recalled, rest_recall)
        shot(alice, "agent-memory")
        alice.get(URL + f"/ui/agents/{alpha_id}?q=Lyon%3F%20(warehouse%20%22")
        recalled = [e.text for e in alice.find_elements(By.CSS_SELECTOR, "#memories .memory-text")]
        check("a recall query with an unbalanced quote and punctuation is read as words, not refused",
              recalled == ["the warehouse in Lyon restocks on Tuesdays"] and not alice.find_elements(By.ID, "recall-error"), alice.page_source[-600:])
        status, _, _ = http("GET", f"/ui/agents/{alpha_id}?q=Lyon", cookie=cookie_of(admin))
        check("an admin may open alice's agent page", status == 200, status)
        alice.get(URL + f"/ui/agents/{alpha_id}")
        alice.find_element(By.ID, "goal").send_keys("echo from the dashboard")
        alice.find_element(By.ID, "goal-plan").send_keys(json.dumps({"name": "ui-goal-plan", "steps": [{"id": "s", "call": "echo.echo", "input": {"g": 1}}]}))
        alice.find_element(By.ID, "submit-goal").click()
        notice = WebDriverWait(alice, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.notice"))).text
        _, _, goals = http("GET", f"/v1/agents/{alpha_id}/runs", ALICE_KEY)
        goal_items = goals.get("items", []) if isinstance(goals, dict) else []
        check("a goal submitted from the agent page is queued (REST lists it)", "Goal submitted" in notice and len(goal_items) == 1
              and goal_items[0]["goal"] == "echo from the dashboard", (notice, goals))
        goal_run = goal_items[0]["run_id"] if goal_items else "none"
        goal_view = wait_run(ALICE_KEY, goal_run)
        check("the dashboard's goal runs and succeeds", goal_view.get("status") == "succeeded", goal_view)
        alice.get(URL + f"/ui/agents/{alpha_id}")
        alice.find_element(By.ID, "agent-runs").click()
        WebDriverWait(alice, 10).until(EC.url_contains(f"agent={alpha_id}"))
        check("the agent page links to the runs list filtered by the agent",
              [r.get_attribute("id") for r in alice.find_elements(By.CSS_SELECTOR, "#runs tbody tr")] == [f"run-{goal_run}"], alice.current_url)
        status, _, _ = http("POST", f"/ui/agents/{alpha_id}/goals", cookie=alice_cookie, form={"goal": "forged"})
        check("a goal post without the CSRF token is refused 403", status == 403, status)

        # Runs filtered by agent and by plan (server-side, GET /v1/runs's query), live rows too.
        alice.get(URL + "/ui/runs")
        alice.find_element(By.ID, "agent").send_keys("ui-search-alpha" + Keys.ENTER)
        WebDriverWait(alice, 10).until(EC.url_contains("agent=ui-search-alpha"))
        listed = [r.get_attribute("id") for r in alice.find_elements(By.CSS_SELECTOR, "#runs tbody tr")]
        check("the runs list filtered by agent lists the agent's goal only", listed == [f"run-{goal_run}"], listed)
        _, _, rest_runs = http("GET", "/v1/runs?agent=ui-search-alpha", ALICE_KEY)
        check("GET /v1/runs?agent= lists the same", [r["run_id"] for r in rest_runs.get("runs", [])] == [goal_run], rest_runs)
        status, _, _ = http("GET", f"/v1/runs?agent={beta.get('id')}", ALICE_KEY)
        status_ui, _, _ = http("GET", f"/ui/runs?agent={beta.get('id')}", cookie=alice_cookie)
        check("filtering by another principal's agent is 404 (REST and dashboard)", (status, status_ui) == (404, 404), (status, status_ui))
        WebDriverWait(alice, 10).until(lambda d: d.find_element(By.ID, "runs").get_attribute("data-live") == "connected")
        plain = submit(ALICE_KEY, {"name": "ui-goal-plan", "steps": [{"id": "s", "call": "echo.echo", "input": {"g": 2}}]})
        wait_run(ALICE_KEY, plain)
        _, _, goal2 = http("POST", f"/v1/agents/{alpha_id}/goals", ALICE_KEY,
                           {"goal": "second goal", "plan": {"name": "ui-goal-plan", "steps": [{"id": "s", "call": "echo.echo", "input": {"g": 3}}]}})
        goal2_run = goal2.get("run_id", "none") if isinstance(goal2, dict) else "none"
        check("a new goal of the filtered agent is inserted live", live_row_reaches(alice, goal2_run, "succeeded"), alice.page_source[-800:])
        check("a run not matching the agent filter is not inserted live (it finished before the goal was inserted)",
              not alice.find_elements(By.ID, f"run-{plain}"), [r.get_attribute("id") for r in alice.find_elements(By.CSS_SELECTOR, "#runs tbody tr")])
        shot(alice, "runs-by-agent")
        alice.get(URL + "/ui/runs")
        alice.find_element(By.ID, "plan").send_keys("ui-denied" + Keys.ENTER)
        WebDriverWait(alice, 10).until(EC.url_contains("plan=ui-denied"))
        listed = [r.get_attribute("id") for r in alice.find_elements(By.CSS_SELECTOR, "#runs tbody tr")]
        check("the runs list filtered by plan lists that plan's runs only", listed == [f"run-{denied_id}"], listed)
        WebDriverWait(alice, 10).until(lambda d: d.find_element(By.ID, "runs").get_attribute("data-live") == "connected")
        other = submit(ALICE_KEY, two_steps)
        wait_run(ALICE_KEY, other)
        again = submit(ALICE_KEY, denied_plan)
        check("a new run of the filtered plan is inserted live", live_row_reaches(alice, again, "denied"), alice.page_source[-800:])
        check("a run of another plan is not inserted live", not alice.find_elements(By.ID, f"run-{other}"),
              [r.get_attribute("id") for r in alice.find_elements(By.CSS_SELECTOR, "#runs tbody tr")])
        _, _, rest_plan = http("GET", "/v1/runs?plan=ui-denied", ALICE_KEY)
        check("GET /v1/runs?plan= lists the same runs", [r["run_id"] for r in rest_plan.get("runs", [])] == [again, denied_id], rest_plan)
        _, _, both = http("GET", "/v1/runs?plan=ui-goal-plan&agent=ui-search-alpha", ALICE_KEY)
        check("agent and plan filters combine", sorted(r["run_id"] for r in both.get("runs", [])) == sorted([goal_run, goal2_run]), both)

        # A subscription's dead letters: listed, then replayed (confirmation first), by the admin.
        setup = [http("POST", "/v1/subscriptions", ADMIN_KEY, {"id": "ui-dlq-sub", "topic": "ui.events", "max_deliveries": 1})[0],
                 http("POST", "/v1/topics/ui.events/messages", ADMIN_KEY, {"payload": {"order": 77}})[0]]
        _, _, got = http("GET", "/v1/subscriptions/ui-dlq-sub/messages?max=1&wait=0", ADMIN_KEY)
        delivered = got.get("messages", []) if isinstance(got, dict) else []
        nacked = http("POST", "/v1/subscriptions/ui-dlq-sub/nack", ADMIN_KEY, {"receipt": delivered[0]["receipt"], "error": "ui test poison"})[2] if delivered else {}
        check("a message nacked on its last delivery is dead-lettered", setup == [201, 201] and nacked.get("outcome") == "dead_lettered", (setup, got, nacked))
        dead_msg = delivered[0]["message"]["id"] if delivered else "none"
        admin.get(URL + "/ui/jobs")
        admin.find_element(By.ID, "sub-dead-ui-dlq-sub").click()
        WebDriverWait(admin, 10).until(EC.presence_of_element_located((By.ID, "dead-letters-total")))
        row = admin.find_elements(By.XPATH, f"//table[@id='dead-letters']//tr[td//*[@id='dead-letter-{dead_msg}']]")
        cells = [c.text for c in row[0].find_elements(By.TAG_NAME, "td")] if row else []
        check("the subscription page lists the dead letter with its error and payload",
              len(cells) > 6 and cells[4] == "ui test poison" and '"order":77' in cells[6].replace(" ", ""), cells)
        shot(admin, "subscription-dlq")
        status, _, _ = http("GET", "/ui/jobs/subscriptions/ui-dlq-sub", cookie=alice_cookie)
        check("alice, whom the policy does not allow bus.receive, is refused the dead letters 403", status == 403, status)
        status, _, _ = http("POST", "/ui/jobs/subscriptions/ui-dlq-sub/dlq/replay", cookie=cookie_of(admin), form={"confirm": "yes", "message_id": dead_msg})
        check("a replay post without the CSRF token is refused 403", status == 403, status)
        status, _, _ = http("POST", "/ui/jobs/subscriptions/ui-dlq-sub/dlq/purge", cookie=alice_cookie,
                            form={"confirm": "yes", "message_id": dead_msg, "csrf": token})
        check("alice's purge post (valid CSRF token) is refused 403 by the policy", status == 403, status)
        admin.find_element(By.ID, f"replay-{dead_msg}").click()
        WebDriverWait(admin, 10).until(EC.presence_of_element_located((By.ID, "confirm")))
        shot(admin, "dlq-confirm")
        _, _, dlq_waiting = http("GET", "/v1/subscriptions/ui-dlq-sub/dlq", ADMIN_KEY)
        check("the replay waits for confirmation", dlq_waiting.get("total") == 1, dlq_waiting)
        admin.find_element(By.ID, "confirm").click()
        notice = WebDriverWait(admin, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.notice"))).text
        _, _, dlq_after = http("GET", "/v1/subscriptions/ui-dlq-sub/dlq", ADMIN_KEY)
        _, _, again_got = http("GET", "/v1/subscriptions/ui-dlq-sub/messages?max=1&wait=0", ADMIN_KEY)
        redelivered = [m["message"]["id"] for m in again_got.get("messages", [])] if isinstance(again_got, dict) else []
        check("replaying from the page puts the message back (REST: DLQ empty, message delivered again)",
              "replayed" in notice and dlq_after.get("total") == 0 and redelivered == [dead_msg], (notice, dlq_after, again_got))

        # HTML validity, CSP and labels of every page.
        check_page("overview (user)", "/ui", alice_cookie)
        check_page("overview (admin)", "/ui", admin_cookie)
        check_page("overview, 24 hours (admin)", "/ui?window=24h", admin_cookie)
        check_page("runs", "/ui/runs", alice_cookie)
        check_page("runs filtered", "/ui/runs?status=succeeded", alice_cookie)
        check_page("runs (admin, by principal)", "/ui/runs?status=succeeded&principal=bob", admin_cookie)
        check_page("run", f"/ui/runs/{run_id}", alice_cookie)
        check_page("run verified", f"/ui/runs/{run_id}/verify", alice_cookie)
        check_page("run denied", f"/ui/runs/{denied_id}", alice_cookie)
        check_page("agents", "/ui/agents", alice_cookie)
        check_page("agent", f"/ui/agents/{agent['id']}", alice_cookie)
        check_page("agent confirm", f"/ui/agents/{agent['id']}/resume", alice_cookie, method="POST", form={"csrf": token})
        check_page("approvals", "/ui/approvals", admin_cookie)
        check_page("drivers (user)", "/ui/drivers", alice_cookie)
        check_page("drivers (admin)", "/ui/drivers", admin_cookie)
        check_page("jobs (user)", "/ui/jobs", alice_cookie)
        check_page("jobs (admin)", "/ui/jobs", admin_cookie)
        check_page("jobs in a state", "/ui/jobs?state=succeeded", alice_cookie)
        admin_token = admin.find_element(By.CSS_SELECTOR, "form.who input[name=csrf]").get_attribute("value")
        check_page("job confirm", f"/ui/jobs/{dead_id}/discard", admin_cookie, method="POST", form={"csrf": admin_token})
        check_page("agents searched", "/ui/agents?q=alpha&status=active", alice_cookie)
        check_page("agent with versions, state, memory and the goal form", f"/ui/agents/{alpha_id}?q=Lyon", alice_cookie)
        check_page("runs by agent and plan", "/ui/runs?agent=ui-search-alpha&plan=ui-goal-plan", alice_cookie)
        check_page("subscription dead letters", "/ui/jobs/subscriptions/ui-dlq-sub", admin_cookie)
        check_page("dead letter confirm", "/ui/jobs/subscriptions/ui-dlq-sub/dlq/purge", admin_cookie, method="POST", form={"csrf": admin_token})
        check_page("not found", f"/ui/runs/{bob_run}", alice_cookie, expect=404)
        check_page("forbidden (csrf)", f"/ui/agents/{agent['id']}/resume", alice_cookie, method="POST", form={}, expect=403)
        for asset in ["/ui/assets/app.js", "/ui/assets/app.css"]:
            status, headers, _ = http("GET", asset)
            check(f"{asset} is served with the CSP", status == 200 and "script-src 'self'" in headers.get("Content-Security-Policy", ""), status)
        alice.get(URL + "/ui/approvals")
        shot(alice, "approvals")
        alice.get(URL + "/ui/agents")
        shot(alice, "agents")

        # A phone-sized window: nothing wider than the viewport.
        phone_pages = {
            ALICE_KEY: [("/ui", "overview-phone"), ("/ui/runs", "runs-phone"), (f"/ui/runs/{run_id}", "run-phone"),
                        ("/ui/drivers", "drivers-phone"), ("/ui/jobs", "jobs-phone"), ("/ui/agents?q=alpha", "agents-phone"),
                        (f"/ui/agents/{alpha_id}?q=Lyon", "agent-phone"), ("/ui/runs?agent=ui-search-alpha&plan=ui-goal-plan", "runs-filtered-phone")],
            ADMIN_KEY: [("/ui/jobs/subscriptions/ui-dlq-sub", "subscription-phone")],
        }
        for key, pages in phone_pages.items():
            phone = browser(390, 844, phone=True)
            try:
                login(phone, key)
                for path, name in pages:
                    phone.get(URL + path)
                    width = phone.execute_script("return document.documentElement.scrollWidth;")
                    inner = phone.execute_script("return window.innerWidth;")
                    check(f"{path} fits a 390 px wide window", width <= inner + 1, (width, inner))
                    shot(phone, name)
            finally:
                phone.quit()
        check("no CSP violation in the browser console (admin)", not csp_violations(admin), csp_violations(admin))

        # Logout ends the session server-side.
        alice.get(URL + "/ui")
        alice.find_element(By.CSS_SELECTOR, "form.who button").click()
        WebDriverWait(alice, 10).until(EC.presence_of_element_located((By.ID, "credential")))
        status, headers, _ = http("GET", "/ui/runs", cookie=alice_cookie)
        check("after logout the old session cookie is refused", status == 303 and "/ui/login" in headers.get("Location", ""), status)

        # The login rate limit (last: it refuses every login from this address for a while):
        # failed logins take tokens; with none left even the right key is refused 429.
        status, headers, _ = http("GET", "/ui/login")
        login_token = re.search(r"nova_login_csrf=([0-9a-f]{64})", headers.get("Set-Cookie", "")).group(1)
        login_cookie = f"nova_login_csrf={login_token}"
        codes = []
        for _ in range(12):
            status, headers, text = http("POST", "/ui/login", cookie=login_cookie, form={"csrf": login_token, "credential": "wrong-key"})
            codes.append(status)
            if status == 429:
                break
        check("failed logins are refused 401 until the limit, then 429", codes[-1] == 429 and set(codes[:-1]) == {401} and 5 <= len(codes) <= 11, codes)
        retry = headers.get("Retry-After", "")
        check("the 429 carries Retry-After and a clear page", retry.isdigit() and int(retry) > 0 and "Too many failed logins" in text, (retry, str(text)[-400:]))
        status, _, _ = http("POST", "/ui/login", cookie=login_cookie, form={"csrf": login_token, "credential": ALICE_KEY})
        check("while limited even the right key is refused 429", status == 429, status)
        check_page("login refused 429", "/ui/login", login_cookie, method="POST", form={"csrf": login_token, "credential": "x"}, expect=429)
        _, _, audit = http("GET", "/v1/audit?action=auth.failure&limit=1000", ADMIN_KEY)
        limited = [e for e in audit.get("entries", []) if "too many failed logins" in json.dumps(e)]
        check("refused logins are audited as auth failures", len(limited) >= 2, audit.get("entries", [])[-2:])
        status, _, _ = http("GET", "/v1/runs", ALICE_KEY)
        check("the REST API is not affected by the dashboard's login limit", status == 200, status)
    finally:
        alice.quit()
        admin.quit()
    sys.exit(0 if all(RESULTS) else 1)


if __name__ == "__main__":
    main()
