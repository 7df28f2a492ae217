"""Driver lifecycle on a real `nova-host serve` (issue 10 item 10): a failed reload shows as
`reload_error` in GET /v1/drivers and /v1/drivers/{name} while the old generation serves; on
SIGTERM, after in-flight calls end, every instance is destroyed and every driver shut down
(in process and process-isolated)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from e2e_common import check, env, finish, http, start_serve

BIN = env("NOVA_HOST_BIN")
ADMIN_KEY = env("NOVA_ADMIN_KEY")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_variant(out, *defines):
    subprocess.run(["cc", "-std=c11", "-shared", "-fPIC", "-fvisibility=hidden", "-I", os.path.join(ROOT, "Sources/DriverABI/include"),
                    "-o", out, os.path.join(ROOT, "Tests/fixtures/variant_driver.c"), *defines], check=True)


def scenario(isolation):
    work = tempfile.mkdtemp(prefix=f"nova-e2e-lifecycle-{isolation}-")
    drivers = os.path.join(work, "drivers")
    os.makedirs(drivers)
    markers = os.path.join(work, "markers")
    build_variant(os.path.join(drivers, "libnova_variant.so"), f'-DMARKER_FILE="{markers}"', "-DLOG_ON_CALL")
    with open(os.path.join(work, "policy.json"), "w") as f:
        json.dump({"roles": {"admin": {}, "user": {}}, "principals": {"admin": "admin", "alice": "user"},
                   "rules": [{"id": "all", "effect": "allow", "tools": ["*"]}]}, f)
    with open(os.path.join(work, "drivers.json"), "w") as f:
        json.dump({"drivers": {"variant": {"isolation": isolation}}}, f)
    with open(os.path.join(work, "host.json"), "w") as f:
        f.write(env("NOVA_E2E_CONFIG_JSON"))
    proc, url = start_serve(["--config", os.path.join(work, "host.json"), "--drivers", drivers, "--data", os.path.join(work, "data"),
                             "--policy", os.path.join(work, "policy.json"), "--driver-config", os.path.join(work, "drivers.json"),
                             "--log-level", "info"], os.path.join(work, "server.log"))
    try:
        status, _, body = http("POST", f"{url}/tools/variant.ping", ADMIN_KEY, {})
        check(f"lifecycle ({isolation}): the driver answers", status == 200 and body.get("output") == {"pong": True}, (status, body))
        run_id = body.get("run_id")
        lines = [json.loads(l) for l in open(os.path.join(work, "server.log")) if "variant says hello" in l]
        check(f"lifecycle ({isolation}): a driver's log record is a JSON log line naming driver, generation, call and run",
              len(lines) == 1 and lines[0].get("driver") == "variant" and lines[0].get("level") == "warning"
              and lines[0].get("generation") == "1" and lines[0].get("call_id") and lines[0].get("run_id") == run_id, lines)
        _, _, metrics = http("GET", f"{url}/metrics", ADMIN_KEY)
        check(f"lifecycle ({isolation}): driver log records are counted",
              'nova_driver_log_records_total{driver="variant",level="warning"} 1' in metrics,
              [l for l in metrics.splitlines() if "driver_log" in l])

        # A new version that cannot load (ABI major 9): the old generation keeps serving.
        staging = os.path.join(work, "libnova_variant.so")
        build_variant(staging, "-DVARIANT_MAJOR=9")
        os.replace(staging, os.path.join(drivers, "libnova_variant.so"))
        status, _, report = http("POST", f"{url}/v1/drivers/reload", ADMIN_KEY, {})
        check(f"lifecycle ({isolation}): the reload reports the failure",
              status == 200 and any(f.startswith("variant:") for f in report.get("failed", [])), (status, report))
        _, _, listing = http("GET", f"{url}/v1/drivers", ADMIN_KEY)
        entry = next((d for d in listing.get("drivers", []) if d["name"] == "variant"), {})
        check(f"lifecycle ({isolation}): GET /v1/drivers shows reload_error while the old version serves",
              entry.get("state") == "loaded" and "major" in (entry.get("reload_error") or ""), entry)
        _, _, one = http("GET", f"{url}/v1/drivers/variant", ADMIN_KEY)
        check(f"lifecycle ({isolation}): GET /v1/drivers/variant shows reload_error", "major" in (one.get("reload_error") or ""), one)
        status, _, _ = http("POST", f"{url}/tools/variant.ping", ADMIN_KEY, {})
        check(f"lifecycle ({isolation}): the old generation still answers", status == 200)

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        text = open(markers).read() if os.path.exists(markers) else ""
        check(f"lifecycle ({isolation}): SIGTERM destroys the instance, then shuts the driver down",
              code == 0 and text == "destroy\nshutdown\n", (code, text, open(os.path.join(work, "server.log")).read()[-1500:]))
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


scenario("inprocess")
scenario("process")
finish()
