"""Policy reload on a real `nova-host serve` process (issue 10 item 11): SIGHUP and
`POST /v1/policy/reload` re-read the policy file; a bad file keeps the old profile and is shown
as `reload_error`; a run in flight keeps the profile it started with; every decision in an
episode names the profile (hash) that made it."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from e2e_common import check, env, finish, http, start_serve

BIN = env("NOVA_HOST_BIN")
USER_KEY = env("NOVA_USER_KEY")
ADMIN_KEY = env("NOVA_ADMIN_KEY")

DATA = tempfile.mkdtemp(prefix="nova-e2e-policy-")
POLICY = os.path.join(DATA, "policy.json")
ORIGINAL = json.load(open(env("NOVA_E2E_POLICY")))
# The same roles, but users may no longer call echo tools.
NO_ECHO = dict(ORIGINAL, rules=[r for r in ORIGINAL["rules"] if r["id"] != "users-echo"])


def write_policy(doc_or_text):
    text = doc_or_text if isinstance(doc_or_text, str) else json.dumps(doc_or_text)
    with open(POLICY + ".tmp", "w") as f:
        f.write(text)
    os.replace(POLICY + ".tmp", POLICY)


def start():
    write_policy(ORIGINAL)
    cfg = os.path.join(DATA, "host.json")
    with open(cfg, "w") as f:
        f.write(env("NOVA_E2E_CONFIG_JSON"))
    return start_serve(["--config", cfg, "--drivers", env("NOVA_E2E_DRIVERS"), "--data", os.path.join(DATA, "data"),
                        "--policy", POLICY, "--log-level", "notice"], os.path.join(DATA, "server.log"))


def policy(url):
    return http("GET", f"{url}/v1/policy", ADMIN_KEY)[2]


def wait_for(url, predicate):
    """Polls GET /v1/policy until `predicate` holds (a reload after SIGHUP is asynchronous)."""
    for _ in range(1000):
        p = policy(url)
        if predicate(p):
            return p
        time.sleep(0.01)
    return policy(url)


def echo_status(url):
    return http("POST", f"{url}/tools/echo.echo", USER_KEY, {"x": 1})[0]


def run_status(url, run_id):
    return http("GET", f"{url}/v1/runs/{run_id}", USER_KEY)[2]


def main():
    proc, url = start()
    try:
        first = policy(url)
        check("policy: GET /v1/policy shows the hash, file and no reload error",
              first.get("hash", "").startswith("sha256:") and first.get("file") == POLICY and first.get("reload_error") is None, first)
        status, _, body = http("GET", f"{url}/v1/policy", USER_KEY)
        check("policy: non-admins see the hash but not the file or profile",
              status == 200 and body.get("hash") == first["hash"] and "file" not in body and "profile" not in body, body)
        check("policy: users may call echo.echo before the reload", echo_status(url) == 200)

        # A run in flight across the reload: step a sleeps, step b echoes (allowed only by the old profile).
        plan = {"name": "across", "steps": [{"id": "a", "call": "echo.sleep", "input": {"ms": 4000}},
                                            {"id": "b", "call": "echo.echo", "input": {"after": True}}]}
        _, _, body = http("POST", f"{url}/v1/runs", USER_KEY, {"plan": plan})
        run_id = body.get("run_id")
        for _ in range(3000):
            # Running: step a has started (the job was taken and its run is in flight).
            if run_status(url, run_id).get("status") == "running":
                break
            time.sleep(0.01)

        write_policy(NO_ECHO)
        proc.send_signal(signal.SIGHUP)
        second = wait_for(url, lambda p: p.get("hash") != first["hash"])
        still_running = run_status(url, run_id).get("status") == "running"
        check("policy: SIGHUP reloads the policy", second.get("hash") != first["hash"] and second.get("reload_error") is None, second)
        check("policy: after SIGHUP users are denied echo.echo", echo_status(url) == 403)

        for _ in range(3000):
            run = run_status(url, run_id)
            if run.get("status") not in ("running", "queued"):
                break
            time.sleep(0.02)
        check("policy: a run in flight during the reload finishes under the profile it started with",
              still_running and run.get("status") == "succeeded", (still_running, run))
        episode = http("GET", f"{url}/v1/episodes/{run_id}", USER_KEY)[2]
        hashes = [a.get("decision", {}).get("policy") for s in episode.get("document", {}).get("steps", []) for a in s.get("attempts", [])]
        check("policy: the episode names the profile (hash) that decided each call", hashes == [first["hash"], first["hash"]], episode)

        write_policy("{ this is not json")
        proc.send_signal(signal.SIGHUP)
        third = wait_for(url, lambda p: p.get("reload_error"))
        check("policy: a bad file on SIGHUP keeps the old profile and shows reload_error",
              third.get("hash") == second["hash"] and "not valid JSON" in (third.get("reload_error") or ""), third)
        check("policy: the old profile still decides", echo_status(url) == 403)

        status, _, body = http("POST", f"{url}/v1/policy/reload", ADMIN_KEY, {})
        check("policy: POST /v1/policy/reload of a bad file is 422 policy_invalid with the old hash",
              status == 422 and body["error"]["code"] == "policy_invalid" and body["error"].get("hash") == second["hash"], (status, body))
        status, _, body = http("POST", f"{url}/v1/policy/reload", USER_KEY, {})
        check("policy: reloading needs an admin role", status == 403, (status, body))

        # A profile without the role an API key uses would lock that key out: refused.
        no_user_role = dict(ORIGINAL, roles={"admin": {}, "service": {}}, principals={"admin": "admin", "ci": "service"},
                            rules=[r for r in ORIGINAL["rules"] if "user" not in r.get("roles", [])])
        write_policy(no_user_role)
        status, _, body = http("POST", f"{url}/v1/policy/reload", ADMIN_KEY, {})
        check("policy: a profile without a role the API keys use is refused",
              status == 422 and "e2e-alice" in body["error"]["message"], (status, body))

        write_policy(ORIGINAL)
        status, _, body = http("POST", f"{url}/v1/policy/reload", ADMIN_KEY, {})
        check("policy: POST /v1/policy/reload of a good file reloads it",
              status == 200 and body.get("outcome") == "reloaded" and body.get("hash") == first["hash"], (status, body))
        check("policy: the reload error is cleared and users may echo again",
              policy(url).get("reload_error") is None and echo_status(url) == 200)
        status, _, body = http("POST", f"{url}/v1/policy/reload", ADMIN_KEY, {})
        check("policy: reloading the same profile is unchanged", status == 200 and body.get("outcome") == "unchanged", body)
        text = http("GET", f"{url}/metrics", ADMIN_KEY)[2]
        check("policy: reloads are counted by outcome",
              'nova_policy_reloads_total{outcome="failed"} 3' in text and 'nova_policy_reloads_total{outcome="reloaded"} 2' in text
              and 'nova_policy_reloads_total{outcome="unchanged"} 1' in text,
              [l for l in text.splitlines() if "policy_reloads" in l])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log = open(os.path.join(DATA, "server.log")).read()
        check("policy: reloads are logged", "policy reloaded" in log and "policy reload failed" in log, log[-2000:])
        shutil.rmtree(DATA, ignore_errors=True)


main()
finish()
