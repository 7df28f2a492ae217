#!/usr/bin/env python3
"""A PostgreSQL 15 image for the compose test, made from this machine's Debian postgresql-15
(no registry here serves the postgres image). It keeps the contract deploy/compose.yaml relies
on from the official postgres image: POSTGRES_USER, POSTGRES_DB and POSTGRES_PASSWORD_FILE,
data in /var/lib/postgresql/data, pg_isready on PATH, uid 999.

  Tests/packaging/postgres-image.py TAG
"""
import importlib.util
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("build_image", os.path.join(HERE, "../../scripts/build-image.py"))
build_image = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_image)

PG = "/usr/lib/postgresql/15"
UID = 999
ENTRYPOINT = """#!/bin/sh
# First start: initdb with the password from POSTGRES_PASSWORD_FILE, then the database; then serve.
set -eu
PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$POSTGRES_PASSWORD_FILE" --auth-local=trust \\
    --auth-host=scram-sha-256 -E UTF8 --no-locale >/dev/null
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \\"$POSTGRES_DB\\" OWNER \\"$POSTGRES_USER\\";" | postgres --single -j -D "$PGDATA" postgres >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c jit=off
"""


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: postgres-image.py TAG")
    tag = sys.argv[1]
    if not os.path.isfile(f"{PG}/bin/postgres"):
        sys.exit(f"postgres-image: {PG}/bin/postgres missing (apt-get install postgresql-15)")
    work = tempfile.mkdtemp(prefix="nova-pg-image.")
    try:
        r = build_image.RootFS(os.path.join(work, "rootfs"))
        for d in ["/var/lib/postgresql/data", "/run/postgresql"]:
            os.makedirs(r.path(d))
        os.chmod(r.path("/var/lib/postgresql/data"), 0o700)
        os.symlink("/run", r.path("/var/run"))
        elves = ["/bin/sh"]
        r.mirror("/bin/sh")
        for program in ["postgres", "initdb", "pg_isready"]:
            r.copy(f"{PG}/bin/{program}", f"{PG}/bin/{program}", 0o755)
            elves.append(f"{PG}/bin/{program}")
        for name in sorted(os.listdir(f"{PG}/lib")):  # extensions, plpgsql among them; no LLVM JIT
            if name.endswith(".so") and not name.startswith("llvmjit"):
                r.copy(f"{PG}/lib/{name}", f"{PG}/lib/{name}", 0o755)
                elves.append(f"{PG}/lib/{name}")
        shutil.copytree("/usr/share/postgresql/15", r.path("/usr/share/postgresql/15"), symlinks=True)
        shutil.copytree("/usr/share/zoneinfo", r.path("/usr/share/zoneinfo"), symlinks=True)
        r.install_linked_libraries(elves)
        with open(r.path("/usr/local/bin/docker-entrypoint.sh"), "w") as f:
            f.write(ENTRYPOINT)
        os.chmod(r.path("/usr/local/bin/docker-entrypoint.sh"), 0o755)
        with open(r.path("/etc/passwd"), "w") as f:
            f.write(f"root:x:0:0:root:/root:/bin/sh\npostgres:x:{UID}:{UID}:PostgreSQL:/var/lib/postgresql:/bin/sh\n")
        with open(r.path("/etc/group"), "w") as f:
            f.write(f"root:x:0:\npostgres:x:{UID}:\n")
        config = {
            "User": f"{UID}:{UID}",
            "Env": [f"PATH={PG}/bin:/usr/local/bin:/usr/bin:/bin", "POSTGRES_USER=postgres", "POSTGRES_DB=postgres"],
            "Entrypoint": ["/usr/local/bin/docker-entrypoint.sh"],
            "ExposedPorts": {"5432/tcp": {}},
            "Volumes": {"/var/lib/postgresql/data": {}},
            "StopSignal": "SIGINT",
        }
        owners = {"var/lib/postgresql": (UID, "postgres"), "var/lib/postgresql/data": (UID, "postgres"),
                  "run/postgresql": (UID, "postgres")}
        tar = os.path.join(work, "image.tar")
        build_image.write_image(r.dir, tag, config, tar, "Tests/packaging/postgres-image.py (Debian postgresql-15 of the test machine)", owners)
        size = build_image.load_image(tar, tag)
        print(f"postgres test image {tag}: {size / 1e6:.1f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
