#!/usr/bin/env bash
# `make install` into a temporary prefix, then the installed nova-host used from another
# directory: it must find its drivers, the default policy and nova-sandbox without flags.
set -euo pipefail
cd "$(dirname "$0")/../.."
PREFIX=$(mktemp -d "${TMPDIR:-/tmp}/nova-install.XXXXXX")
ELSEWHERE=$(mktemp -d "${TMPDIR:-/tmp}/nova-elsewhere.XXXXXX")
trap 'rm -rf "$PREFIX" "$ELSEWHERE"' EXIT
make -s install PREFIX="$PREFIX" >/dev/null
fail() { echo "install test: FAIL $*"; exit 1; }
for f in bin/nova-host bin/nova-sandbox lib/nova-host/drivers/libnova_echo.so share/nova-host/policy.default.json \
         share/nova-host/drivers.json include/nova_driver.h lib/pkgconfig/nova-driver.pc; do
  [ -e "$PREFIX/$f" ] || fail "missing $PREFIX/$f"
done
# The third-party Swift packages, linked once: the installed host and a driver (and its load
# copy in .gen) find the installed libNovaDependencies.so, not the build's.
for elf in bin/nova-host lib/nova-host/drivers/libnova_http.so "lib/nova-host/drivers/.gen/$(sha256sum "$PREFIX/lib/nova-host/drivers/libnova_http.so" | cut -d' ' -f1).so"; do
  found=$(ldd "$PREFIX/$elf" | sed -n 's/.*libNovaDependencies.so => \([^ ]*\) .*/\1/p')
  [ -n "$found" ] && [ "$(realpath "$found")" = "$(realpath "$PREFIX/lib/nova-host/libNovaDependencies.so")" ] \
    || fail "$elf does not resolve libNovaDependencies.so in $PREFIX/lib/nova-host: $(ldd "$PREFIX/$elf" | grep NovaDependencies)"
done
cd "$ELSEWHERE"
list=$("$PREFIX/bin/nova-host" drivers list --json) || fail "drivers list failed"
echo "$list" | grep -q '"echo"' || fail "installed drivers not found: $list"
out=$(PATH="$PREFIX/bin:/usr/bin:/bin" "$PREFIX/bin/nova-host" policy check --principal local --tool text.upper --json) || true
echo "$out" | grep -q '"examples"' || fail "installed policy not used: $out"
# The installed driver settings (configs/drivers.json) are found from elsewhere too, and the
# sandbox helper without PREFIX/bin on PATH (through the drivers directory).
PATH=/usr/bin:/bin "$PREFIX/bin/nova-host" doctor --json >doctor.json 2>&1 || true
grep -q "\"path\": \"$PREFIX/lib/nova-host/drivers/nova-sandbox\"" doctor.json || fail "installed nova-sandbox not found: $(head -c 600 doctor.json)"
grep -q "\"settings_file\": \"$PREFIX/share/nova-host/drivers.json\"" doctor.json || fail "installed drivers.json not used: $(head -c 400 doctor.json)"
# A user who cannot write the installed drivers directory runs a plan (the drivers' load copies
# in .gen/ were made by make install).
if [ "$(id -u)" = 0 ]; then
  chmod 0755 "$PREFIX" && chmod 0777 "$ELSEWHERE"
  cp "$OLDPWD/examples/hello.plan.json" "$ELSEWHERE/hello.plan.json" && chmod 0644 "$ELSEWHERE/hello.plan.json"
  out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$PREFIX/bin/nova-host" run hello.plan.json --input who=nova --json 2>&1) \
    || fail "installed nova-host run by uid 65534: $out"
  echo "$out" | grep -q '"HELLO, NOVA"' || fail "installed nova-host run by uid 65534: $out"
fi
# A third party builds a driver from the installed header alone, found through pkg-config, and
# checks it with the installed harness.
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
ABI_H="$OLDPWD/Sources/DriverABI/include/nova_driver.h"
ABI="$(sed -n 's/^#define NOVA_ABI_MAJOR //p' "$ABI_H").$(sed -n 's/^#define NOVA_ABI_MINOR //p' "$ABI_H")"
[ "$(pkg-config --modversion nova-driver)" = "$ABI" ] || fail "pkg-config version: $(pkg-config --modversion nova-driver), the header says $ABI"
cp "$OLDPWD/examples/drivers/c-echo/echo.c" .
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -shared -fPIC -fvisibility=hidden $(pkg-config --cflags nova-driver) -o libnova_echo.so echo.c -lpthread \
  || fail "cannot build a driver with pkg-config --cflags nova-driver"
"$PREFIX/bin/nova-host" drivers test libnova_echo.so >conformance.txt || fail "drivers test on a driver built outside the tree: $(cat conformance.txt)"
echo "install test: ok ($PREFIX)"
