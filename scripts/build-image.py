#!/usr/bin/env python3
"""Builds the nova-host container image on this machine, without pulling a base image.

Assembles the runtime root filesystem from what the build produced and the libraries it links:

  /usr/local/bin/nova-host, nova-sandbox        the host (stripped) and the shell driver's helper
  /usr/local/lib/nova-host/drivers/*.so         the drivers (stripped), where an installed
                                                nova-host looks for them (HostPaths.resolve),
                                                and their load copies in .gen/ (hard links)
  /usr/local/lib/nova-host/libNovaDependencies.so  the third-party Swift packages (SwiftNIO, …),
                                                linked once by the host and the drivers (stripped)
  /usr/local/share/nova-host/                   policy.default.json, drivers.json, host.json
  /usr/lib/..., /usr/lib/swift/linux/...        exactly the shared libraries `ldd` lists for the
                                                files above (Swift runtime included), plus
                                                /etc/ld.so.cache made by `ldconfig -r`
  /usr/bin/curl                                 the HEALTHCHECK's client (its libcurl is nova-host's)
  /usr/bin/{echo,ls,cat,wc}                     the programs configs/drivers.json lets shell.exec run,
  /usr/bin/true                                 and the one doctor's sandbox self-test runs
  /etc/ssl/certs/ca-certificates.crt            CA certificates for the http/graphql drivers
  /etc/passwd, /etc/group                       root and the unprivileged user nova (10001)
  /var/lib/nova-host                            the data directory (owned by nova), /tmp (1777)

and nothing else: no shell, no package manager. The root filesystem becomes one layer of a
docker-archive tarball with a full image config (entrypoint, cmd, user, exposed port, env,
healthcheck — `docker import` could not set the healthcheck) that `docker load` imports.

  scripts/build-image.py [--bin-dir DIR] [--tag nova-host:local] [--out image.tar] [--no-load]

--bin-dir: where nova-host and the Swift drivers are (default: the release build,
`swift build -c release --show-bin-path`; the image is meant for a release build, see
docs/deploy.md for the measured sizes). Prints the rootfs and image sizes.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWIFT_DRIVERS = ["text", "http", "postgres", "graphql", "shell", "mcp_proxy"]
USER_ID = 10001
PORT = 8787
SWIFT_LIB_DIR = "/usr/lib/swift/linux"  # where the Swift runtime goes in the image
DEPENDENCIES_DIR = "/usr/local/lib/nova-host"  # where libNovaDependencies.so goes in the image
DEPENDENCIES_LIB = "libNovaDependencies.so"


def fail(message):
    print(f"build-image: error: {message}", file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def linked_libraries(path):
    """The absolute paths of the shared libraries `ldd` resolves for `path` (none for static files)."""
    result = subprocess.run(["ldd", path], text=True, capture_output=True)
    out = result.stdout
    if result.returncode != 0:
        if "not a dynamic executable" in out + result.stderr:
            return []
        fail(f"ldd {path}: {result.stderr.strip() or out.strip()}")
    libs = []
    for line in out.splitlines():
        line = line.strip()
        if "not found" in line:
            fail(f"{path} links a library that is not found: {line}")
        if "=>" in line:
            target = line.split("=>", 1)[1].split("(")[0].strip()
            if target.startswith("/"):
                libs.append(target)
        elif line.startswith("/"):
            libs.append(line.split("(")[0].strip())  # the dynamic loader
    return libs


class RootFS:
    """A root filesystem under construction in a temporary directory (merged /usr, like Debian)."""

    def __init__(self, directory):
        self.dir = directory
        for d in ["usr/bin", "usr/lib", "usr/lib64", "usr/local/bin", "etc", "tmp"]:
            os.makedirs(self.path(d), exist_ok=True)
        for link, target in [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"), ("sbin", "usr/sbin")]:
            os.symlink(target, self.path(link))
        os.chmod(self.path("tmp"), 0o1777)

    def path(self, inside):
        return os.path.join(self.dir, inside.lstrip("/"))

    def copy(self, source, dest, mode=None, strip=False):
        os.makedirs(os.path.dirname(self.path(dest)), exist_ok=True)
        # Never write through a symlink that leads out of the image (an absolute one does here).
        real_dir = os.path.realpath(os.path.dirname(self.path(dest)))
        if not real_dir.startswith(os.path.realpath(self.dir) + os.sep) or os.path.islink(self.path(dest)):
            fail(f"{dest} would be written outside the root filesystem ({real_dir})")
        shutil.copyfile(source, self.path(dest))
        if strip:
            subprocess.run(["strip", "--strip-unneeded", self.path(dest)], check=True)
        os.chmod(self.path(dest), mode if mode is not None else (0o755 if os.access(source, os.X_OK) else 0o644))

    def mirror(self, host_path):
        """Copies `host_path` to the same path in the image, recreating every symlink on the way
        (`/lib64/ld-linux-x86-64.so.2` → `/lib/x86_64-linux-gnu/...` through `/lib` → `usr/lib`)."""
        parts = host_path.strip("/").split("/")
        current = ""
        for i, part in enumerate(parts):
            current += "/" + part
            if os.path.islink(current):
                target = os.readlink(current)
                inside = self.path(current)
                if not os.path.lexists(inside):
                    os.makedirs(os.path.dirname(inside), exist_ok=True)
                    os.symlink(target, inside)
                resolved = os.path.normpath(os.path.join(os.path.dirname(current), target))
                rest = "/".join(parts[i + 1:])
                return self.mirror(resolved + ("/" + rest if rest else ""))
        if os.path.isdir(host_path):
            os.makedirs(self.path(host_path), exist_ok=True)
        elif not os.path.exists(self.path(host_path)):
            self.copy(host_path, host_path)


    def install_linked_libraries(self, elves):
        """Copies the shared libraries `ldd` lists for the files `elves` (paths on this machine)
        to their paths in the image, and writes /etc/ld.so.cache. ldd resolves the Swift runtime
        through the build's RUNPATH (/opt/swift/...); in the image it lives in SWIFT_LIB_DIR,
        found through ld.so.cache. Returns (every library, the Swift ones)."""
        libraries = []
        for elf in elves:
            for lib in linked_libraries(elf):
                if lib not in libraries:
                    libraries.append(lib)
        swift_libs = []
        for lib in libraries:
            if os.path.realpath(lib).startswith(os.path.realpath(self.dir) + "/"):
                continue  # already in the image (libNovaDependencies.so, found through RUNPATH)
            if "/swift/linux/" in lib:
                swift_libs.append(lib)
                # The toolchain's copies keep their symbol tables (12 MB of the 78): stripped here.
                self.copy(os.path.realpath(lib), f"{SWIFT_LIB_DIR}/{os.path.basename(lib)}", 0o755, strip=True)
            else:
                self.mirror(lib)
        with open(self.path("/etc/ld.so.conf"), "w") as f:
            f.write(SWIFT_LIB_DIR + "\n")
        subprocess.run(["ldconfig", "-r", self.dir], check=True)
        return libraries, swift_libs


def assemble(rootfs, bin_dir, sandbox, echo_driver, curl):
    r = rootfs
    os.makedirs(r.path("/var/lib/nova-host"))
    r.copy(os.path.join(bin_dir, "nova-host"), "/usr/local/bin/nova-host", 0o755, strip=True)
    # The third-party Swift packages, linked once: where the host's RUNPATH
    # $ORIGIN/../lib/nova-host and the drivers' $ORIGIN/.. (and .gen's $ORIGIN/../..) find it.
    r.copy(os.path.join(bin_dir, DEPENDENCIES_LIB), f"{DEPENDENCIES_DIR}/{DEPENDENCIES_LIB}", 0o755, strip=True)
    r.copy(sandbox, "/usr/local/bin/nova-sandbox", 0o755, strip=True)
    drivers = "/usr/local/lib/nova-host/drivers"
    for name in SWIFT_DRIVERS:
        r.copy(os.path.join(bin_dir, f"libnova_{name}.so"), f"{drivers}/libnova_{name}.so", 0o644, strip=True)
    r.copy(echo_driver, f"{drivers}/libnova_echo.so", 0o644, strip=True)
    # The host loads a driver from a private copy, <drivers>/.gen/<sha256>.so (DriverRegistry's
    # GenerationFiles), and writes that copy on first load unless it exists. The drivers directory
    # is root's and the server runs as nova: the copies are made here, as hard links (no space).
    os.makedirs(r.path(f"{drivers}/.gen"))
    for name in sorted(os.listdir(r.path(drivers))):
        if name.endswith(".so"):
            with open(r.path(f"{drivers}/{name}"), "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            os.link(r.path(f"{drivers}/{name}"), r.path(f"{drivers}/.gen/{digest}.so"))
    share = "/usr/local/share/nova-host"
    r.copy(os.path.join(ROOT, "configs/policy.default.json"), f"{share}/policy.default.json", 0o644)
    # drivers.json without its editor-only "$schema" (a relative path that means nothing here).
    with open(os.path.join(ROOT, "configs/drivers.json")) as f:
        driver_settings = json.load(f)
    driver_settings.pop("$schema", None)
    with open(r.path(f"{share}/drivers.json"), "w") as f:
        json.dump(driver_settings, f, indent=2)
    # The server's configuration in the image: listen on every interface, no credentials (every
    # protected route answers 401 until a configuration with keys is mounted, docs/deploy.md).
    with open(r.path(f"{share}/host.json"), "w") as f:
        json.dump({"listen": {"host": "0.0.0.0", "port": PORT}, "shutdown_grace_seconds": 20}, f, indent=2)
    r.copy("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt", 0o644)
    r.copy(curl, "/usr/bin/curl", 0o755)
    # The programs shell.exec may run, and /usr/bin/true that `nova-sandbox --probe` (doctor) runs
    # in a full sandbox as its self-test.
    allowed = driver_settings.get("drivers", {}).get("shell", {}).get("config", {}).get("allowed_programs", [])
    programs = sorted(set(allowed) | {"/usr/bin/true"})
    for program in programs:
        real = os.path.realpath(program)
        if os.path.isfile(real):
            r.mirror(program)
    with open(r.path("/etc/passwd"), "w") as f:
        f.write(f"root:x:0:0:root:/root:/usr/sbin/nologin\nnova:x:{USER_ID}:{USER_ID}:nova-host:/var/lib/nova-host:/usr/sbin/nologin\n")
    with open(r.path("/etc/group"), "w") as f:
        f.write(f"root:x:0:\nnova:x:{USER_ID}:\n")
    # Every ELF file in the image, and the libraries they link, by ldd on this machine.
    elves = [r.path("/usr/local/bin/nova-host"), r.path(f"{DEPENDENCIES_DIR}/{DEPENDENCIES_LIB}"), r.path("/usr/bin/curl")]
    elves += [os.path.join(r.path(drivers), f) for f in sorted(os.listdir(r.path(drivers))) if f.endswith(".so")]
    elves += [os.path.realpath(p) for p in programs if os.path.isfile(os.path.realpath(p))]
    libraries, swift_libs = r.install_linked_libraries(elves)
    return libraries, swift_libs, programs


def tree_size(directory):
    """Bytes of the regular files under `directory`, each inode once (the .gen hard links)."""
    total, seen = 0, set()
    for base, _, files in os.walk(directory):
        for name in files:
            st = os.lstat(os.path.join(base, name))
            if stat.S_ISREG(st.st_mode) and st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


def layer_tar(rootfs_dir, owners):
    """The root filesystem as an uncompressed tar: sorted, fixed mtime, owned by root except the
    paths `owners` maps to (uid, name)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = []
        for base, dirs, files in os.walk(rootfs_dir):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                entries.append(os.path.join(base, name))
        for full in sorted(entries):
            rel = os.path.relpath(full, rootfs_dir)
            info = tar.gettarinfo(full, arcname=rel)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if rel in owners:
                info.uid = info.gid = owners[rel][0]
                info.uname = info.gname = owners[rel][1]
            if info.isreg():
                with open(full, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def write_image(rootfs_dir, tag, config, tar_path, created_by, owners):
    """Writes `rootfs_dir` as a one-layer docker-archive tarball (what `docker save` writes and
    `docker load` reads) with `config` as the image's run configuration; `owners` as in layer_tar."""
    layer = layer_tar(rootfs_dir, owners)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    document = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": created_by}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(document).hexdigest() + ".json"
    layer_name = diff_id[7:] + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]).encode()
    with tarfile.open(tar_path, "w") as tar:
        for name, data in [(layer_name, layer), (config_name, document), ("manifest.json", manifest)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return layer


def load_image(tar_path, tag):
    """`docker load`s the tarball; returns the image's size as `docker image inspect` reports it."""
    docker = shutil.which("docker") or fail("docker is not installed (apt-get install docker.io)")
    loaded = subprocess.run([docker, "load", "-i", tar_path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if loaded.returncode != 0:
        fail(f"docker load failed: {loaded.stderr.strip()} (is dockerd running? `dockerd &` or `systemctl start docker`; "
             "or keep the tarball with --out FILE --no-load)")
    return int(run([docker, "image", "inspect", "-f", "{{.Size}}", tag]).strip())


def image_config(programs):
    """The run configuration of the nova-host image."""
    seconds = 1_000_000_000
    return {
        "User": f"{USER_ID}:{USER_ID}",
        "Env": [
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "NOVA_DATA_DIR=/var/lib/nova-host",
            "NOVA_DRIVER_CONFIG=/usr/local/share/nova-host/drivers.json",
            "NOVA_HOST_CONFIG=/usr/local/share/nova-host/host.json",
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        ],
        "Entrypoint": ["/usr/local/bin/nova-host"],
        "Cmd": ["serve"],
        "WorkingDir": "/var/lib/nova-host",
        "ExposedPorts": {f"{PORT}/tcp": {}},
        "Volumes": {"/var/lib/nova-host": {}},
        "StopSignal": "SIGTERM",
        "Healthcheck": {
            "Test": ["CMD", "/usr/bin/curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{PORT}/health"],
            "Interval": 10 * seconds, "Timeout": 3 * seconds, "StartPeriod": 5 * seconds, "Retries": 3,
        },
        "Labels": {
            "org.opencontainers.image.title": "nova-host",
            "org.opencontainers.image.description": "nova-host: plugin host and agent runtime (serve, worker, run)",
            "org.opencontainers.image.source": "scripts/build-image.py",
            "nova-host.shell-programs": ",".join(programs),
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", help="directory with nova-host and libnova_{text,http,postgres,graphql,shell}.so (default: the release build)")
    ap.add_argument("--tag", default="nova-host:local", help="image name:tag (default: nova-host:local)")
    ap.add_argument("--out", help="also keep the docker-archive tarball here")
    ap.add_argument("--rootfs", help="keep the assembled root filesystem in this (new) directory")
    ap.add_argument("--no-load", action="store_true", help="do not `docker load` the image (with --out)")
    args = ap.parse_args()
    if args.no_load and not args.out:
        fail("--no-load needs --out")

    bin_dir = args.bin_dir or run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT).strip()
    for f in ["nova-host", DEPENDENCIES_LIB] + [f"libnova_{d}.so" for d in SWIFT_DRIVERS]:
        if not os.path.isfile(os.path.join(bin_dir, f)):
            fail(f"{bin_dir}/{f} is missing: build it first (swift build -c release), or pass --bin-dir")
    sandbox = os.path.join(ROOT, "Sources/Sandbox/build/nova-sandbox")
    subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "Sources/Sandbox")], check=True)
    curl = shutil.which("curl") or fail("curl is not installed (apt-get install curl): the image's healthcheck uses it")

    work = tempfile.mkdtemp(prefix="nova-image.")
    try:
        echo = os.path.join(work, "libnova_echo.so")
        subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "examples/drivers/c-echo"), f"OUT={echo}",
                        f"ABI_INCLUDE={ROOT}/Sources/DriverABI/include"], check=True)
        rootfs_dir = args.rootfs or os.path.join(work, "rootfs")
        if os.path.exists(rootfs_dir):
            fail(f"{rootfs_dir} exists")
        rootfs = RootFS(rootfs_dir)
        libraries, swift_libs, programs = assemble(rootfs, bin_dir, sandbox, echo, curl)
        tar_path = args.out or os.path.join(work, "image.tar")
        layer = write_image(rootfs_dir, args.tag, image_config(programs), tar_path,
                            "scripts/build-image.py (root filesystem assembled from the build and ldd)",
                            {"var/lib/nova-host": (USER_ID, "nova")})
        rootfs_bytes = tree_size(rootfs_dir)
        print(f"rootfs: {rootfs_bytes / 1e6:.1f} MB ({len(libraries)} shared libraries, {len(swift_libs)} of them the Swift runtime; "
              f"shell programs: {' '.join(programs)})")
        print(f"image tarball: {os.path.getsize(tar_path) / 1e6:.1f} MB, gzip -6: {len(gzip.compress(layer, 6)) / 1e6:.1f} MB")
        if not args.no_load:
            size = load_image(tar_path, args.tag)
            print(f"image {args.tag}: {size / 1e6:.1f} MB (docker image inspect .Size)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
