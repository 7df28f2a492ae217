#!/usr/bin/env bash
# Launch cost of nova-sandbox vs bubblewrap, measured ALTERNATELY in one run
# (altbench: one run of each command per round, ROUNDS rounds after warm-up).
#
#   Benchmarks/sandbox/bench.sh [ROUNDS]        (default 300)
#   BENCH_HYPERFINE=1 Benchmarks/sandbox/bench.sh   also a hyperfine cross-check
#
# Commands (all run /bin/true):
#   true          plain /bin/true, for reference
#   nova          nova-sandbox, full setup: user/mount/pid/net/ipc/uts/cgroup
#                 namespaces, read-only tmpfs root with ro binds of /usr and the
#                 usrmerge links, generated /etc, fresh /proc, small /dev, tmpfs
#                 /tmp, the work dir bound rw, rlimits, no_new_privs, seccomp,
#                 a reaping init as pid 1, status records on a pipe
#   bwrap-min     bwrap with similar minimal binds: --unshare-all --clearenv
#                 --ro-bind /usr, usrmerge symlinks, --proc, --dev, --tmpfs /tmp,
#                 --bind WORK /work, --hostname, --remount-ro /, --new-session,
#                 --die-with-parent
#   bwrap-min+sc  the same plus --seccomp with nova-sandbox's own BPF filter
#   bwrap-rootro  SANDBOX.md's reference: --unshare-all --clearenv --ro-bind / /
#                 --proc /proc --dev /dev
# Prints the table, then median ratios nova/bwrap-* (goal: <= 1.0).
set -eu
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${1:-300}
HELPER=$ROOT/Sources/Sandbox/build/nova-sandbox
make -s -C "$ROOT/Sources/Sandbox" >&2
command -v bwrap >/dev/null || { echo "bench: bubblewrap is not installed (apt-get install bubblewrap)" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/nova-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
${CC:-cc} -O2 -Wall -Wextra -Werror -o "$T/altbench" "$HERE/altbench.c"
mkdir -p "$T/work"
[ "$(id -u)" = 0 ] && chown 65534:65534 "$T/work"
TRUE=/bin/true
printf '%s\0' version=1 "program=$TRUE" "workdir=$T/work" deadline_ms=10000 >"$T/true.cfg"
"$HELPER" --export-bpf >"$T/filter.bpf"
# sanity: each command must succeed once
"$HELPER" --config "$T/true.cfg" --status-fd 9 9>"$T/status" || { cat "$T/status" >&2; exit 1; }

BW_MIN=(bwrap --unshare-all --die-with-parent --new-session --clearenv
    --ro-bind /usr /usr)
for d in bin sbin lib lib64 lib32 libx32; do
    if [ -L "/$d" ]; then BW_MIN+=(--symlink "$(readlink "/$d")" "/$d")
    elif [ -d "/$d" ]; then BW_MIN+=(--ro-bind "/$d" "/$d"); fi
done
BW_MIN+=(--proc /proc --dev /dev --tmpfs /tmp --bind "$T/work" /work --chdir /work
    --hostname nova-sandbox --remount-ro /)
"${BW_MIN[@]}" "$TRUE" || { echo "bench: bwrap does not work here" >&2; exit 1; }

echo "# $(uname -r), $(nproc) cores, uid $(id -u), load $(cut -d' ' -f1-3 /proc/loadavg), $ROUNDS alternating rounds; $("$HELPER" --version); $(bwrap --version)"
"$T/altbench" "$ROUNDS" 20 \
    true -- "$TRUE" \;\; \
    nova -- @fd:3:/dev/null "$HELPER" --config "$T/true.cfg" --status-fd 3 \;\; \
    bwrap-min -- "${BW_MIN[@]}" "$TRUE" \;\; \
    bwrap-min+sc -- "@fd:10:$T/filter.bpf" "${BW_MIN[@]}" --seccomp 10 "$TRUE" \;\; \
    bwrap-rootro -- bwrap --unshare-all --clearenv --ro-bind / / --proc /proc --dev /dev "$TRUE" \
    | tee "$T/table"
awk '$1 == "nova" { n = $2; nc = $7 } $1 ~ /^bwrap/ { b[$1] = $2; bc[$1] = $7 }
     END { for (k in b) printf "ratio nova/%s: median %.2f, cpu %.2f\n", k, n / b[k], nc / bc[k] }' "$T/table" | sort
echo "# goal: median ratio <= 1.0 (wall medians on a loaded 2-core VM are dominated by scheduling;"
echo "#       min_ms and cpu_ms show the intrinsic cost)"

if [ "${BENCH_HYPERFINE:-0}" = 1 ] && command -v hyperfine >/dev/null; then
    hyperfine -N -w 20 -r "$ROUNDS" \
        -n nova "$HELPER --config $T/true.cfg" \
        -n bwrap-rootro "bwrap --unshare-all --clearenv --ro-bind / / --proc /proc --dev /dev $TRUE"
fi
