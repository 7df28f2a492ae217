#!/usr/bin/env bash
# Escape battery for nova-sandbox: the 27 cases of shared/SANDBOX.md, each
# asserting the precise contained outcome, plus checks of the helper's own
# contract (deadline, host signals, setup-failure reporting, filter, probe).
#
#   Tests/sandbox/run-battery.sh                 build everything, run as the current user
#   Tests/sandbox/run-battery.sh --unprivileged  (as root) build, then run the whole
#                                                battery again as uid/gid 65534
#   --no-build                                   use what is already built
#
# Prints "ok N - ..." / "not ok N - ..." (with "#" diagnostics), then the line
# "battery: P passed, F failed"; exits 1 when F > 0. No case is ever skipped:
# a case that cannot be run or contained is a failure.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HELPER=${NOVA_SANDBOX:-$ROOT/Sources/Sandbox/build/nova-sandbox}
BUILD=${NOVA_BATTERY_BUILD:-$HERE/build}
CC=${CC:-cc}
BUILD_IT=1
UNPRIV=0
for a in "$@"; do
    case $a in
    --no-build) BUILD_IT=0 ;;
    --unprivileged) UNPRIV=1 ;;
    *) echo "usage: $0 [--no-build] [--unprivileged]" >&2; exit 2 ;;
    esac
done

if [ "$BUILD_IT" = 1 ]; then
    make -s -C "$ROOT/Sources/Sandbox" >&2 || { echo "battery: 0 passed, 40 failed"; exit 1; }
    mkdir -p "$BUILD/probes" "$BUILD/tools"
    ok=1
    $CC -O2 -Wall -Wextra -Werror -pthread -o "$BUILD/probes/escape" "$HERE/probes/escape.c" || ok=0
    $CC -O2 -Wall -Wextra -Werror -o "$BUILD/probes/suid_probe" "$HERE/probes/suid_probe.c" || ok=0
    for t in host_read host_run listener; do
        $CC -O2 -Wall -Wextra -Werror -o "$BUILD/tools/$t" "$HERE/tools/$t.c" || ok=0
    done
    [ "$ok" = 1 ] || { echo "battery: 0 passed, 40 failed"; exit 1; }
    if [ "$(id -u)" = 0 ]; then
        chown root:root "$BUILD/probes/suid_probe" && chmod 4755 "$BUILD/probes/suid_probe"
    fi
    chmod 755 "$BUILD" "$BUILD/probes" "$BUILD/tools"
fi

if [ "$UNPRIV" = 1 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "--unprivileged is for root (it re-runs the battery as uid 65534)" >&2
        exit 2
    fi
    # run from a world-readable copy: the checkout may sit below a 0700 directory
    U=$(mktemp -d "${TMPDIR:-/tmp}/nova-battery-unpriv.XXXXXX")
    chmod 755 "$U"
    cp "$HERE/run-battery.sh" "$U/" && cp "$HELPER" "$U/nova-sandbox" && cp -rp "$BUILD" "$U/build" ||
        { echo "battery: 0 passed, 40 failed"; rm -rf "$U"; exit 1; }
    chmod -R a+rX "$U"
    setpriv --reuid=65534 --regid=65534 --clear-groups --reset-env -- \
        env NOVA_SANDBOX="$U/nova-sandbox" NOVA_BATTERY_BUILD="$U/build" PATH=/usr/bin:/bin \
        bash "$U/run-battery.sh" --no-build
    rc=$?
    rm -rf "$U"
    exit $rc
fi

PROBES=$BUILD/probes
TOOLS=$BUILD/tools
T=$(mktemp -d "${TMPDIR:-/tmp}/nova-battery.XXXXXX")
chmod 755 "$T"
LISTENER_PID=
BG_PIDS=()
cleanup() {
    [ -n "$LISTENER_PID" ] && kill "$LISTENER_PID" 2>/dev/null
    for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

ME=$(id -u)
# The sandbox's uid on the host: root maps it to the work dir's owner (the
# helper's dedicated default uid 2000000000 here, never the shared 65534),
# anyone else to themselves.
if [ "$ME" = 0 ]; then SBUID=2000000000; else SBUID=$ME; fi
as_sbuid() { if [ "$ME" = 0 ]; then setpriv --reuid=$SBUID --regid=$SBUID --clear-groups -- "$@"; else "$@"; fi; }

PASS=0
FAILN=0
ERRS=""
bad() { ERRS+="$*"$'\n'; }
finish() { # N description
    if [ -z "$ERRS" ]; then
        echo "ok $1 - $2"
        PASS=$((PASS + 1))
    else
        echo "not ok $1 - $2"
        printf '%s' "$ERRS" | sed 's/^/#   /'
        FAILN=$((FAILN + 1))
    fi
    ERRS=""
}

newwork() { # NAME -> prints a fresh work dir owned by the sandbox uid
    local w="$T/work-$1"
    mkdir -p "$w"
    [ "$ME" = 0 ] && chown $SBUID:$SBUID "$w"
    echo "$w"
}

# sb NAME [config records...] -- PROGRAM [ARGS...]
# Writes $T/NAME.cfg, runs the helper; $T/NAME.{out,err,status}; RC = exit code.
# Records: workdir=$T/work-NAME and /probes (read-only) are added, and
# deadline_ms=20000 unless given.
sb() {
    local name=$1
    shift
    local recs=()
    while [ "$1" != "--" ]; do recs+=("$1"); shift; done
    shift
    local prog=$1
    shift
    local w
    w=$(newwork "$name")
    local has_deadline=0
    for r in "${recs[@]}"; do case $r in deadline_ms=*) has_deadline=1 ;; esac; done
    [ "$has_deadline" = 0 ] && recs+=("deadline_ms=20000")
    {
        printf '%s\0' version=1 "program=$prog" "argv=${prog##*/}"
        for a in "$@"; do printf 'argv=%s\0' "$a"; done
        printf '%s\0' "workdir=$w" "bind_ro=$PROBES" "bind_ro_dest=/probes" "${recs[@]}"
    } >"$T/$name.cfg"
    # shellcheck disable=SC2086 # SB_ENV: extra host environment, word-split on purpose
    piped "$T/$name.out" "$T/$name.err" "${SB_STDIN:-/dev/null}" \
        env ${SB_ENV:-} "$HELPER" --config "$T/$name.cfg" --status-fd 9 9>"$T/$name.status"
}

# piped OUT ERR IN CMD...: runs CMD with stdin, stdout and stderr as pipes (the helper refuses
# regular files and terminals, issue 10.5) from IN and into the files OUT and ERR (ERR may be
# OUT: both streams then go to one pipe); sets RC to CMD's exit status.
piped() {
    local out=$1 err=$2 in=$3
    shift 3
    if [ "$err" = "$out" ]; then
        { cat "$in" | "$@" 2>&1; echo "${PIPESTATUS[1]}" >"$out.rc"; } | cat >"$out"
    else
        { { cat "$in" | "$@" 2>&1 1>&3 3>&-; echo "${PIPESTATUS[1]}" >"$err.rc"; } | cat >"$err"; } 3>&1 | cat >"$out"
        mv "$err.rc" "$out.rc"
    fi
    RC=$(cat "$out.rc")
}

jfield() { # JSONLINE KEY -> value (strings unquoted)
    printf '%s' "$1" | sed -n "s/.*\"$2\":\(\"[^\"]*\"\|true\|false\|[-0-9.][-0-9.]*\).*/\1/p" | tr -d '"'
}
final() { tail -n 1 "$T/$1.status" 2>/dev/null; }
execrec() { grep '"stage":"exec","init_pid"' "$T/$1.status" 2>/dev/null | head -n 1; }

show() { # NAME: attach output on failure
    bad "rc=$RC status: $(tr '\n' ' ' <"$T/$1.status" 2>/dev/null)"
    [ -s "$T/$1.out" ] && bad "stdout: $(grep -v '^ok ' "$T/$1.out" | head -n 20)"
    [ -s "$T/$1.err" ] && bad "stderr: $(head -n 5 "$T/$1.err")"
}

expect_exit() { # NAME CODE
    local f
    f=$(final "$1")
    if [ "$RC" != "$2" ] || [ "$(jfield "$f" stage)" != exit ] || [ "$(jfield "$f" exit_code)" != "$2" ]; then
        bad "expected exit_code $2"
        show "$1"
        return 1
    fi
}
expect_signal() { # NAME SIGNUM
    local f
    f=$(final "$1")
    if [ "$(jfield "$f" stage)" != exit ] || [ "$(jfield "$f" signal)" != "$2" ]; then
        bad "expected death by signal $2"
        show "$1"
        return 1
    fi
}
expect_probe_ok() { # NAME: exit 0, no FAIL line, probe summary present
    expect_exit "$1" 0 || return 1
    if grep -q '^FAIL' "$T/$1.out" || ! grep -q 'failure(s)' "$T/$1.out"; then
        bad "probe reported failures"
        show "$1"
        return 1
    fi
}
expect_setup_error() { # NAME STAGE ERRNO CODE
    local f
    f=$(final "$1")
    if [ "$RC" != "$4" ] || [ "$(jfield "$f" stage)" != "$2" ] || [ "$(jfield "$f" errno)" != "$3" ] ||
        grep -q '"stage":"exec","init_pid"' "$T/$1.status"; then
        bad "expected setup error stage=$2 errno=$3 exit=$4"
        show "$1"
        return 1
    fi
}

# Processes of a sandbox, two independent ways: (a) every process whose pid
# namespace is PIDNS (readable for root, or for processes we may ptrace);
# (b) the sandbox init (INITPID, unless it is a zombie) and all its
# descendants by PPid (readable by anyone; orphans inside are re-parented to
# that init, and the kernel kills the whole namespace when it dies).
procs_of_sandbox() { # PIDNS INITPID -> host pids, one per line
    local ino=$1 init=$2 p
    if [ -n "$ino" ]; then
        for p in /proc/[0-9]*; do
            [ "$(stat -L -c %i "$p/ns/pid" 2>/dev/null)" = "$ino" ] && echo "${p#/proc/}"
        done
    fi
    if [ -n "$init" ]; then
        ps -e -o pid=,ppid=,stat= | awk -v root="$init" '
            { pid[NR] = $1; ppid[NR] = $2; st[NR] = $3 }
            END {
                live[root] = 1; changed = 1
                while (changed) { changed = 0
                    for (i = 1; i <= NR; i++) if (live[ppid[i]] && !live[pid[i]]) { live[pid[i]] = 1; changed = 1 } }
                for (i = 1; i <= NR; i++) if (live[pid[i]] && st[i] !~ /^Z/) print pid[i]
            }'
    fi
}
expect_no_survivors() { # NAME [seconds]
    local ino init left i
    ino=$(jfield "$(execrec "$1")" pid_ns)
    init=$(jfield "$(execrec "$1")" init_pid)
    if [ -z "$ino" ] || [ -z "$init" ]; then
        bad "no pid_ns/init_pid in the exec record"
        return 1
    fi
    for i in $(seq 0 $((${2:-2} * 10))); do
        left=$(procs_of_sandbox "$ino" "$init" | sort -u)
        [ -z "$left" ] && return 0
        [ "$i" -lt $((${2:-2} * 10)) ] && sleep 0.1
    done
    bad "processes of the sandbox survive: $(echo $left)"
    return 1
}

wait_exec() { # STATUSFILE -> waits (<=5s) for the exec record
    local i
    for i in $(seq 1 50); do
        grep -q '"stage":"exec","init_pid"' "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- fixtures
SECRET="$T/host-secret"
echo "TOP SECRET host data" >"$SECRET"
ABSTRACT="nova-battery-$$"
"$TOOLS/listener" "$T/ports" "$T/listener.log" "$ABSTRACT" 150 &
LISTENER_PID=$!
for i in $(seq 1 200); do [ -s "$T/ports" ] && break; sleep 0.05; done
read -r TCPPORT UDPPORT <"$T/ports" 2>/dev/null || { TCPPORT=0; UDPPORT=0; }
: >"$T/listener.log"

START=$(date +%s)

# ---------------------------------------------------------------- 1
HOSTPATHS=("$SECRET" "$T" "$HERE" /root/.ssh/id_rsa)
case ${HOME:-/} in / | /nonexistent) ;; *) HOSTPATHS+=("$HOME/.ssh") ;; esac
sb c1 -- /probes/escape read-host "${HOSTPATHS[@]}"
expect_probe_ok c1
finish 1 "read /etc/shadow, /root, ~/.ssh, other host paths -> ENOENT/EACCES"

# ---------------------------------------------------------------- 2
sb c2 -- /probes/escape write-ro
expect_probe_ok c2
finish 2 "write /, /usr, /etc -> EROFS"

# ---------------------------------------------------------------- 3
sb c3 cwd=/work -- /probes/escape dotdot
expect_probe_ok c3
if [ -e "$T/escape" ] || [ -e /escape ] || [ -e "$T/d" ]; then bad "a file appeared outside the work dir"; fi
finish 3 "write outside the work dir through .. -> EROFS, nothing on the host"

# ---------------------------------------------------------------- 4
sb c4 -- /probes/escape plant "$SECRET"
expect_probe_ok c4
W4=$T/work-c4
for rel in result.txt rel.txt outdir/x sub/deep/passwd; do
    if out=$("$TOOLS/host_read" "$W4" "$rel" 2>&1); then
        bad "host followed planted $rel: $out"
    elif [ "$out" != "refused: ELOOP" ]; then
        bad "host_read $rel: '$out', want 'refused: ELOOP'"
    fi
done
out=$(timeout 5 "$TOOLS/host_read" "$W4" fifo.txt 2>&1)
[ "$out" = "refused: not a regular file" ] || bad "host_read fifo.txt: '$out' (rc $?), want 'refused: not a regular file'"
out=$("$TOOLS/host_read" "$W4" "../host-secret" 2>&1)
[ "$out" = "refused: EXDEV" ] || bad "host_read ../host-secret: '$out', want 'refused: EXDEV'"
out=$("$TOOLS/host_read" "$W4" ok.txt 2>&1)
[ "$out" = "plain result" ] || bad "host_read ok.txt (control): '$out'"
finish 4 "symlinks planted in the work dir -> host refuses (ELOOP/EXDEV)"

# ---------------------------------------------------------------- 5
sb c5 -- /probes/escape hardlink
expect_probe_ok c5
finish 5 "hardlink to a read-only file -> EXDEV/EROFS"

# ---------------------------------------------------------------- 6
sb c6 -- /probes/escape net "$TCPPORT" "$UDPPORT"
expect_probe_ok c6
sleep 0.2
if [ -s "$T/listener.log" ]; then bad "host listener was reached: $(cat "$T/listener.log")"; fi
# control: the listener is reachable from the host itself
(exec 3<>"/dev/tcp/127.0.0.1/$TCPPORT") 2>/dev/null || bad "control: host cannot reach its own TCP listener"
(printf x >"/dev/udp/127.0.0.1/$UDPPORT") 2>/dev/null
for i in $(seq 1 50); do
    [ "$(grep -c '^tcp contact' "$T/listener.log")" = 1 ] && [ "$(grep -c '^udp contact' "$T/listener.log")" = 1 ] && break
    sleep 0.1
done
[ "$(grep -c '^tcp contact' "$T/listener.log")" = 1 ] && [ "$(grep -c '^udp contact' "$T/listener.log")" = 1 ] ||
    bad "control: listener log '$(tr '\n' ' ' <"$T/listener.log")'"
: >"$T/listener.log"
finish 6 "TCP/UDP to a host 127.0.0.1 listener, DNS -> ENETUNREACH/EAI_AGAIN, listener untouched"

# ---------------------------------------------------------------- 7
sb c7 -- /probes/escape abstract "$ABSTRACT"
expect_probe_ok c7
sleep 0.2
if [ -s "$T/listener.log" ]; then bad "host abstract socket was reached: $(cat "$T/listener.log")"; fi
# control: the same probe on the host does connect
"$PROBES/escape" abstract "$ABSTRACT" >"$T/c7-control.out" 2>&1
grep -q '^FAIL connect @name: succeeded' "$T/c7-control.out" || bad "control: host could not connect to @$ABSTRACT"
# the listener handles events in order: the sandbox's attempts (if any had
# got through) would be logged before the control's, so exactly one of each
for i in $(seq 1 50); do
    [ "$(grep -c '^unix-stream contact' "$T/listener.log")" = 1 ] &&
        [ "$(grep -c '^unix-dgram contact' "$T/listener.log")" = 1 ] && break
    sleep 0.1
done
[ "$(grep -c '^unix-stream contact' "$T/listener.log")" = 1 ] &&
    [ "$(grep -c '^unix-dgram contact' "$T/listener.log")" = 1 ] ||
    bad "control: listener log '$(tr '\n' ' ' <"$T/listener.log")'"
: >"$T/listener.log"
finish 7 "connect to a host abstract unix socket @name -> ECONNREFUSED"

# ---------------------------------------------------------------- 8
t0=$(date +%s%N)
sb c8 nproc=48 -- /probes/escape forkbomb 48
t1=$(date +%s%N)
expect_probe_ok c8
expect_no_survivors c8
/bin/true || bad "the host cannot fork"
[ $(((t1 - t0) / 1000000)) -lt 15000 ] || bad "fork bomb took $(((t1 - t0) / 1000000)) ms"
finish 8 "fork bomb -> EAGAIN at nproc, host unaffected, every process reaped"

# ---------------------------------------------------------------- 9
sb c9 memory_bytes=268435456 -- /probes/escape membomb 268435456
expect_probe_ok c9
rss=$(jfield "$(final c9)" max_rss_kb)
[ -n "$rss" ] && [ "$rss" -le 262144 ] || bad "max_rss_kb=$rss over the 256 MiB limit"
finish 9 "memory bomb -> ENOMEM under RLIMIT_AS, host unaffected"

# ---------------------------------------------------------------- 10
sb c10 cpu_seconds=1 deadline_ms=15000 -- /probes/escape cpuloop
expect_signal c10 24
[ "$(jfield "$(final c10)" timeout)" = cpu ] || bad "not reported as a cpu timeout: $(final c10)"
[ "$RC" = 152 ] || bad "helper exit $RC, want 152 (128+SIGXCPU)"
expect_no_survivors c10
finish 10 "CPU loop past the time limit -> killed (SIGXCPU), reported as timeout"

# ---------------------------------------------------------------- 11
w=$(newwork c11)
printf '%s\0' version=1 program=/usr/bin/yes argv=yes "workdir=$w" deadline_ms=20000 >"$T/c11.cfg"
summary=$("$TOOLS/host_run" "$HELPER" "$T/c11.cfg" 1048576 "$T/c11.out" "$T/c11.status")
RC=$(jfield "$summary" helper_exit)
[ "$(jfield "$summary" truncated)" = true ] || bad "not marked truncated: $summary"
[ "$(stat -c %s "$T/c11.out")" = 1048576 ] || bad "kept $(stat -c %s "$T/c11.out") bytes, want 1048576"
f=$(final c11)
[ "$(jfield "$f" killed_by_host)" = SIGTERM ] && [ "$(jfield "$f" signal)" = 9 ] && [ "$RC" = 137 ] ||
    bad "status '$f' rc=$RC, want killed_by_host SIGTERM, signal 9, exit 137"
expect_no_survivors c11
finish 11 "output flood (yes) -> capped by the host, sandbox killed, marked truncated"

# ---------------------------------------------------------------- 12
sb c12 fsize_bytes=1048576 nofile=64 -- /probes/escape fill 1048576 64
expect_probe_ok c12
finish 12 "fill the disk / exhaust fds -> EFBIG / EMFILE"

# ---------------------------------------------------------------- 13
sb c13 -- /probes/escape ptrace
expect_probe_ok c13
finish 13 "ptrace parent / pid 1, process_vm_readv -> EPERM"

# ---------------------------------------------------------------- 14
if [ "$ME" = 0 ]; then
    setpriv --reuid=$SBUID --regid=$SBUID --clear-groups -- sleep 60 &
else
    sleep 60 &
fi
HOSTSLEEP=$!
BG_PIDS+=("$HOSTSLEEP")
sleep 0.1
[ "$(awk '/^Uid:/ {print $2}' /proc/$HOSTSLEEP/status)" = "$SBUID" ] || bad "fixture: host process is not uid $SBUID"
sb c14 -- /probes/escape kill "$HOSTSLEEP"
expect_probe_ok c14
kill -0 "$HOSTSLEEP" 2>/dev/null || bad "the host process of the same uid died"
kill -9 "$HOSTSLEEP" 2>/dev/null
wait "$HOSTSLEEP" 2>/dev/null
finish 14 "kill -9 a host process of the same uid -> ESRCH, it survives"

# ---------------------------------------------------------------- 15-18
sb c15 -- /probes/escape mount
expect_probe_ok c15
finish 15 "mount, umount2, chroot, pivot_root, sethostname -> EPERM"
sb c16 -- /probes/escape ns
expect_probe_ok c16
finish 16 "unshare(CLONE_NEWUSER) -> EPERM, clone3 -> ENOSYS, clone with ns flags -> EPERM"
sb c17 -- /probes/escape keys
expect_probe_ok c17
finish 17 "keyctl, add_key, io_uring_setup -> EPERM"
sb c18 -- /probes/escape kernel
expect_probe_ok c18
finish 18 "bpf, perf_event_open, userfaultfd, personality -> EPERM"

# ---------------------------------------------------------------- 19
name=c19
w=$(newwork $name)
printf '%s\0' version=1 program=/probes/escape argv=escape argv=tiocsti "workdir=$w" \
    "bind_ro=$PROBES" bind_ro_dest=/probes deadline_ms=20000 >"$T/$name.cfg"
if command -v script >/dev/null 2>&1; then
    # a terminal as the helper's stdin (the pty slave of `script`) is refused outright
    SHELL=/bin/sh script -qec "'$HELPER' --config '$T/$name.cfg' --status-fd 9 9>'$T/$name.status' >/dev/null 2>&1; echo \$? >'$T/$name.rc'" \
        /dev/null </dev/null >"$T/$name.pty" 2>&1
    RC=$(cat "$T/$name.rc" 2>/dev/null)
    expect_setup_error $name fds 9 125
    grep -q 'stdin (fd 0) is a terminal' "$T/$name.status" || bad "status: $(cat "$T/$name.status")"
else
    bad "util-linux script(1) is missing: cannot give the sandbox a terminal"
fi
# and the ioctl itself is refused by the filter (EPERM before the kernel's ENOTTY)
sb c19b -- /probes/escape tiocsti
expect_probe_ok c19b
finish 19 "a terminal on stdin is refused; ioctl TIOCSTI (also with bit 32 set) -> EPERM"

# ---------------------------------------------------------------- 20
sb c20 -- /probes/escape int80
expect_signal c20 31
[ "$RC" = 159 ] || bad "helper exit $RC, want 159 (128+SIGSYS)"
sb c20b -- /probes/escape x32
expect_signal c20b 31
finish 20 "i386 syscall via int 0x80 (and x32) -> killed by SIGSYS"

# ---------------------------------------------------------------- 21
ctl=$(as_sbuid "$PROBES/suid_probe" 2>&1)
case $ctl in euid=0\ *) ;; *) bad "control: suid_probe on the host is not setuid-root ($ctl)" ;; esac
sb c21 -- /probes/escape exe /probes/suid_probe
expect_probe_ok c21
finish 21 "open /proc/self/exe for writing -> EACCES; setuid-root binary -> no privilege"

# ---------------------------------------------------------------- 22
exec 5<"$SECRET" 7<"$SECRET" 8>"$T/fd8"
sb c22 -- /probes/escape fds
exec 5<&- 7<&- 8>&-
expect_probe_ok c22
finish 22 "read from descriptors the host left open -> only 0-2 exist"

# ---------------------------------------------------------------- 23
ARGS=('; rm -rf /' '$(id)' '`id`' '> /etc/x' '&&' '| cat /etc/passwd' '*' '' 'a b' "'q'" '"dq"' $'line\nbreak' '$HOME' '%s%n')
sb c23 -- /probes/escape argv "${ARGS[@]}"
{
    i=0
    for a in "${ARGS[@]}"; do printf 'arg[%d]=<%s>\n' "$i" "$a"; i=$((i + 1)); done
    echo "probe argv: 0 failure(s)"
} >"$T/c23.want"
[ "$RC" = 0 ] || show c23
cmp -s "$T/c23.want" "$T/c23.out" || bad "argv differs: $(diff "$T/c23.want" "$T/c23.out" | head -n 10)"
[ -z "$(ls -A "$T/work-c23")" ] || bad "files appeared in the work dir: $(ls -A "$T/work-c23")"
finish 23 "arguments '; rm -rf /', \$(id), \`id\`, '> /etc/x', && -> passed literally"

# ---------------------------------------------------------------- 24
SB_ENV="LD_PRELOAD=/nonexistent/evil.so GITHUB_TOKEN=ghp_battery AWS_SECRET_ACCESS_KEY=battery AWS_PROFILE=battery" sb c24 env=FOO=bar env=LANG=C.UTF-8 env=LD_PRELOAD=/work/evil.so env=LD_LIBRARY_PATH=/work \
    env=PATH=/work:/usr/bin -- /probes/escape env
expect_exit c24 0
printf '%s\n' 'env=<PATH=/usr/local/bin:/usr/bin:/bin>' 'env=<FOO=bar>' 'env=<LANG=C.UTF-8>' \
    'probe env: 0 failure(s)' >"$T/c24.want"
cmp -s "$T/c24.want" "$T/c24.out" || bad "environment differs: $(diff "$T/c24.want" "$T/c24.out" | head -n 10)"
finish 24 "LD_PRELOAD, *_TOKEN, AWS_* in the host env (and LD_* in the config) -> absent inside"

# ---------------------------------------------------------------- 25
sb c25a -- escape env
expect_setup_error c25a config 22 125
sb c25b -- ./escape env
expect_setup_error c25b config 22 125
sb c25c -- /work/../probes/escape env
expect_setup_error c25c config 22 125
w=$(newwork c25d)
printf '#!/bin/sh\ntouch /work/PWNED\n' >"$w/escape"
printf '#!/bin/sh\ntouch /work/PWNED\n' >"$w/evil"
chmod 755 "$w/escape" "$w/evil"
[ "$ME" = 0 ] && chown $SBUID:$SBUID "$w/escape" "$w/evil"
sb c25d env=PATH=/work -- /usr/bin/env evil
expect_exit c25d 127
[ -e "$w/PWNED" ] && bad "the program planted in the work dir ran"
finish 25 "program by relative path / through a PATH in the work dir -> refused"

# ---------------------------------------------------------------- 26
kill_host_case() { # NAME WHAT(host|helper)
    local name=$1 what=$2 hr helper ino init before left i
    local w
    w=$(newwork "$name")
    printf '%s\0' version=1 program=/probes/escape argv=escape argv=sleepers "workdir=$w" \
        "bind_ro=$PROBES" bind_ro_dest=/probes deadline_ms=30000 >"$T/$name.cfg"
    "$TOOLS/host_run" "$HELPER" "$T/$name.cfg" 1000000 "$T/$name.out" "$T/$name.status" >/dev/null &
    hr=$!
    BG_PIDS+=("$hr")
    wait_exec "$T/$name.status" || { bad "sandbox did not start"; return; }
    for i in $(seq 1 30); do grep -q 'sleepers started' "$T/$name.out" && break; sleep 0.1; done
    ino=$(jfield "$(execrec "$name")" pid_ns)
    init=$(jfield "$(execrec "$name")" init_pid)
    helper=$(cut -d' ' -f1 "/proc/$hr/task/$hr/children" 2>/dev/null)
    before=$(procs_of_sandbox "$ino" "$init" | sort -u | wc -l)
    [ "$before" -ge 6 ] || bad "expected >= 6 sandbox processes before the kill, saw $before"
    local prog
    prog=$(jfield "$(execrec "$name")" pid)
    [ "$(awk '/^PPid:/ {print $2}' "/proc/$prog/status" 2>/dev/null)" = "$init" ] ||
        bad "exec record pid $prog is not the child of init $init"
    if [ "$what" = host ]; then kill -9 "$hr"; else kill -9 "$helper"; fi
    for i in $(seq 1 30); do
        left=$(procs_of_sandbox "$ino" "$init" | sort -u)
        [ -z "$left" ] && ! kill -0 "$helper" 2>/dev/null && break
        sleep 0.1
    done
    [ -z "$left" ] || bad "after SIGKILL of the $what, sandbox processes remain: $(echo $left)"
    if [ -n "$helper" ] && [ -e "/proc/$helper" ] && ! grep -q '^State:.*Z' "/proc/$helper/status" 2>/dev/null; then
        bad "the helper ($helper) survives"
    fi
    wait "$hr" 2>/dev/null
}
kill_host_case c26 host 2>/dev/null
kill_host_case c26b helper 2>/dev/null
finish 26 "host (or helper) SIGKILLed during a run -> sandbox dies too, nothing orphaned"

# ---------------------------------------------------------------- 27
sb c27 -- /probes/escape isolation "$$" "$LISTENER_PID"
expect_probe_ok c27
finish 27 "hostname, host /proc, /sys -> own hostname, host pids invisible, no /sys"

# ================================================================ helper contract
sb c28 deadline_ms=800 -- /probes/escape sleepers
f=$(final c28)
[ "$(jfield "$f" timeout)" = wall ] && [ "$(jfield "$f" signal)" = 9 ] && [ "$RC" = 124 ] ||
    bad "status '$f' rc=$RC, want timeout wall, signal 9, exit 124"
wall=$(jfield "$f" wall_ms)
wall=${wall%.*}
[ -n "$wall" ] && [ "$wall" -ge 800 ] && [ "$wall" -lt 3000 ] || bad "wall_ms=$wall"
expect_no_survivors c28
finish 28 "deadline_ms passes -> whole pid namespace killed, reported as timeout (exit 124)"

name=c29
w=$(newwork $name)
printf '%s\0' version=1 program=/probes/escape argv=escape argv=sleepers "workdir=$w" \
    "bind_ro=$PROBES" bind_ro_dest=/probes deadline_ms=30000 >"$T/$name.cfg"
"$HELPER" --config "$T/$name.cfg" --status-fd 9 9>"$T/$name.status" > >(cat >"$T/$name.out") 2>&1 </dev/null &
hp=$!
wait_exec "$T/$name.status" || bad "did not start"
for i in $(seq 1 30); do grep -q 'sleepers started' "$T/$name.out" && break; sleep 0.1; done
kill -TERM "$hp"
wait "$hp"
RC=$?
f=$(final $name)
[ "$(jfield "$f" killed_by_host)" = SIGTERM ] && [ "$(jfield "$f" signal)" = 9 ] && [ "$RC" = 137 ] ||
    bad "status '$f' rc=$RC, want killed_by_host SIGTERM, signal 9, exit 137"
expect_no_survivors $name
finish 29 "SIGTERM to the helper -> whole sandbox killed, nothing survives"

sb c30a -- /nonexistent/program
expect_setup_error c30a exec 2 127
sb c30b -- /etc/passwd
expect_setup_error c30b exec 13 126
printf '%s\0' version=1 program=/usr/bin/true bogus_key=1 >"$T/c30c.cfg"
"$HELPER" --config "$T/c30c.cfg" --status-fd 9 9>"$T/c30c.status" >/dev/null 2>&1 </dev/null
RC=$?
expect_setup_error c30c config 22 125
printf '%s\0' version=1 program=/usr/bin/true "workdir=$T/does-not-exist" >"$T/c30d.cfg"
"$HELPER" --config "$T/c30d.cfg" --status-fd 9 9>"$T/c30d.status" >/dev/null 2>&1 </dev/null
RC=$?
expect_setup_error c30d config 2 125
printf 'version=1\0program=/usr/bin/true' >"$T/c30e.cfg" # not NUL-terminated
"$HELPER" --config "$T/c30e.cfg" --status-fd 9 9>"$T/c30e.status" >/dev/null 2>&1 </dev/null
RC=$?
expect_setup_error c30e config 22 125
finish 30 "setup failures are reported on the status fd with stage/errno and exit 125/126/127"

sb c31a -- /bin/sh -c 'exit 42'
expect_exit c31a 42
sb c31b -- /bin/sh -c 'kill -SEGV $$'
expect_signal c31b 11
[ "$RC" = 139 ] || bad "rc=$RC, want 139"
grep -q '"stage":"exec","init_pid":[0-9]*,"pid":[0-9]*,"pid_ns":[0-9]*' "$T/c31a.status" ||
    bad "exec record malformed: $(head -n 1 "$T/c31a.status")"
grep -q '"max_rss_kb":[0-9]*,"user_ms":[0-9.]*,"sys_ms":[0-9.]*,"wall_ms":[0-9.]*}$' "$T/c31a.status" ||
    bad "exit record malformed: $(final c31a)"
finish 31 "program exit code and signal are reported (exit_code / signal, 128+N)"

out=$("$HELPER" --check-filter 2>&1) || bad "$out"
finish 32 "embedded seccomp BPF equals what libseccomp builds"

"$HELPER" --probe >"$T/probe.json" 2>&1
RC=$?
[ "$RC" = 0 ] || bad "--probe exit $RC: $(cat "$T/probe.json")"
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["sandbox_usable"] is True; assert d["user_namespaces"]["available"] is True' "$T/probe.json" ||
        bad "probe JSON: $(cat "$T/probe.json")"
else
    grep -q '"sandbox_usable":true' "$T/probe.json" || bad "probe JSON: $(cat "$T/probe.json")"
fi
finish 33 "--probe prints valid JSON and the full sandbox works here"

# where user namespaces are refused (here: the helper run inside a sandbox,
# whose seccomp filter denies them), the helper refuses with a clear message
w=$(newwork c34)
printf '%s\0' version=1 program=/usr/bin/true >"$T/c34-inner.cfg"
chmod 644 "$T/c34-inner.cfg"
printf '%s\0' version=1 program=/h/nova-sandbox argv=nova-sandbox argv=--config argv=/h/inner.cfg \
    "bind_ro=$HELPER" bind_ro_dest=/h/nova-sandbox "bind_ro=$T/c34-inner.cfg" bind_ro_dest=/h/inner.cfg \
    deadline_ms=20000 >"$T/c34.cfg"
piped "$T/c34.out" "$T/c34.err" /dev/null "$HELPER" --config "$T/c34.cfg" --status-fd 9 9>"$T/c34.status"
expect_exit c34 125
grep -q '^nova-sandbox: userns: user namespaces are not available to uid [0-9]* (Operation not permitted); the sandbox refuses to run' "$T/c34.err" ||
    bad "stderr: $(cat "$T/c34.err")"
finish 34 "user namespaces unavailable -> helper refuses: stage userns, exit 125, clear message"

sb c35 wait_teardown=1 -- /bin/sh -c 'sleep 5 & sleep 5 & exit 0'
expect_exit c35 0
init=$(jfield "$(execrec c35)" init_pid)
if [ -z "$init" ]; then bad "no init_pid"; elif [ -e "/proc/$init" ]; then bad "init $init still exists when the helper has exited"; fi
expect_no_survivors c35 0
# default: when the helper exits, nothing but the exiting init may remain
sb c35b -- /bin/sh -c 'sleep 5 & sleep 5 & exit 0'
expect_exit c35b 0
init=$(jfield "$(execrec c35b)" init_pid)
left=$(procs_of_sandbox "$(jfield "$(execrec c35b)" pid_ns)" "$init" | sort -u | grep -vx "$init")
[ -z "$left" ] || bad "sandbox processes alive when the helper exited: $(echo $left)"
expect_no_survivors c35b
finish 35 "helper exit: every sandbox process is reaped (wait_teardown=1: init too)"

# ================================================================ resource and uid isolation (issue 10)
# ---------------------------------------------------------------- 36
# Memory outside RLIMIT_AS: memfd data and SysV shm are in nobody's address
# space. As root the sandbox's cgroup must kill the holder (killed: memory);
# without a cgroup (uid 65534 here: no delegation) memfd_create is refused and
# SysV shm is bounded by the ipc namespace's shmall/shmmax (shm_bytes) where
# the kernel lets the helper set them (root), else shmget is refused too.
if [ "$ME" = 0 ]; then SHMCFG=shm_bytes=1073741824; else SHMCFG=shm_bytes=33554432; fi
for kind in memfd shm; do
    sb c36$kind memory_bytes=67108864 memory_max_bytes=67108864 $SHMCFG -- /probes/escape memhold $kind 268435456
    f=$(final c36$kind)
    bound=$(jfield "$f" memory_bound)
    if [ "$ME" = 0 ]; then
        case $bound in cgroup-v1 | cgroup-v2) ;; *) bad "$kind: memory_bound '$bound', want a cgroup as root" ;; esac
        expect_signal c36$kind 9
        [ "$(jfield "$f" killed)" = memory ] || bad "$kind: not reported as killed: memory: $f"
        peak=$(jfield "$f" memory_peak_bytes)
        [ -n "$peak" ] && [ "$peak" -le 67108864 ] || bad "$kind: memory_peak_bytes '$peak' above the 64 MiB limit"
    else
        [ "$bound" = rlimit-only ] || bad "$kind: memory_bound '$bound', want rlimit-only without a cgroup"
        expect_probe_ok c36$kind
        if [ $kind = memfd ]; then
            grep -q '^ok memfd: held 0 of 256 MiB, stopped by memfd_create: EPERM' "$T/c36$kind.out" || bad "memfd_create not refused"
            [ "$(jfield "$f" memfd)" = denied ] || bad "exit record does not say memfd is denied: $f"
        else
            grep -q '^ok shm: held 0 of 256 MiB, stopped by shmget: EPERM' "$T/c36$kind.out" || bad "shmget not refused"
            [ "$(jfield "$f" sysv_shm)" = denied ] || bad "exit record does not say SysV shm is denied: $f"
        fi
    fi
    expect_no_survivors c36$kind
done
if [ "$ME" = 0 ]; then
    # root without a cgroup (cgroup=off): SysV shm limited by shm_bytes, memfd refused
    sb c36c cgroup=off shm_bytes=33554432 memory_bytes=67108864 -- /probes/escape memhold shm 268435456
    expect_probe_ok c36c
    grep -Eq '^ok shm: held (16|32) of 256 MiB, stopped by shmget: ENOSPC' "$T/c36c.out" || bad "SysV shm not bounded by shm_bytes"
    f=$(final c36c)
    [ "$(jfield "$f" memory_bound)" = rlimit-only ] && [ "$(jfield "$f" sysv_shm)" = limited ] &&
        [ "$(jfield "$f" memfd)" = denied ] || bad "cgroup=off: exit record $f"
    # a non-root helper given a delegated cgroup (here a v1 memory cgroup owned by uid 65534 that
    # it runs in): the sandbox's cgroup is created below it and bounds SysV shm (the helper
    # cannot set the shm sysctls) and memfds (allowed, since a cgroup holds them)
    mem=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
    mnt=$(awk '$9 == "cgroup" && $NF ~ /(^|,)memory(,|$)/ {print $5; exit}' /proc/self/mountinfo)
    D="$mnt${mem%/}/nova-battery-$$"
    if [ -n "$mnt" ] && mkdir "$D" && chown -R 65534:65534 "$D"; then
        for kind in memfd shm; do
            name=c36d$kind
            w=$(newwork $name)
            chown 65534:65534 "$w"
            printf '%s\0' version=1 program=/probes/escape argv=escape argv=memhold "argv=$kind" argv=268435456 \
                "workdir=$w" "bind_ro=$PROBES" bind_ro_dest=/probes memory_max_bytes=67108864 deadline_ms=20000 >"$T/$name.cfg"
            chmod 644 "$T/$name.cfg"
            piped "$T/$name.out" "$T/$name.out" /dev/null setpriv --reuid=65534 --regid=65534 --clear-groups -- sh -c \
                "echo \$\$ >'$D/cgroup.procs' && exec '$HELPER' --config '$T/$name.cfg' --status-fd 9" \
                9>"$T/$name.status"
            f=$(final $name)
            expect_signal $name 9
            [ "$(jfield "$f" memory_bound)" = cgroup-v1 ] && [ "$(jfield "$f" killed)" = memory ] ||
                bad "delegated cgroup, $kind: exit record $f"
            [ $kind = shm ] && [ "$(jfield "$f" sysv_shm)" != cgroup ] && bad "delegated cgroup: sysv_shm is not 'cgroup': $f"
        done
        [ -z "$(ls -d "$D"/nova-sandbox-* 2>/dev/null)" ] || bad "sandbox cgroups left in $D"
        rmdir "$D" || bad "cannot remove $D"
    else
        bad "cannot create a delegated memory cgroup for uid 65534 under '$mnt${mem%/}'"
    fi
fi
finish 36 "memory held in memfds / SysV shm beyond the limit -> cgroup OOM kill (root) or refused (no cgroup)"

# ---------------------------------------------------------------- 37
# The work dir is a size- and inode-limited tmpfs; what the host gets back is
# bounded by the same limits, and a full work dir is reported.
sb c37 workdir_bytes=8388608 workdir_inodes=300 fsize_bytes=4194304 memory_max_bytes=268435456 -- /probes/escape diskfill 67108864 5000
expect_probe_ok c37
used=$(du -sk "$T/work-c37" | cut -f1)
[ "$used" -le 8448 ] || bad "host work dir holds $used KiB, over the 8 MiB limit"
files=$(find "$T/work-c37" | wc -l)
[ "$files" -le 301 ] || bad "host work dir holds $files entries, over the 300 inode limit"
[ "$(jfield "$(final c37)" disk_full)" = inodes ] || bad "not reported as disk_full: inodes: $(final c37)"
# the default is bounded too
sb c37b -- /usr/bin/stat -f -c '%T %b %S %c' /work
expect_exit c37b 0
read -r fstype blocks bsize inodes <"$T/c37b.out"
[ "$fstype" = tmpfs ] && [ $((blocks * bsize)) -le $((1 << 30)) ] && [ "$inodes" -le 100000 ] ||
    bad "default /work is '$(cat "$T/c37b.out")', want a bounded tmpfs"
# a persistent work dir: copied in, mirrored back (deletions too) ...
w=$(newwork c37c)
echo old >"$w/old.txt"
[ "$ME" = 0 ] && chown $SBUID:$SBUID "$w/old.txt"
sb c37c -- /bin/sh -c 'cat old.txt && rm old.txt && mkdir -p a/b && echo new >a/b/new.txt'
expect_exit c37c 0
[ "$(cat "$T/c37c.out")" = old ] || bad "old.txt was not copied in: $(cat "$T/c37c.out")"
[ "$(cd "$w" && find . | sort | tr '\n' ' ')" = ". ./a ./a/b ./a/b/new.txt " ] ||
    bad "host work dir after the run: $(cd "$w" && find . | sort | tr '\n' ' ')"
# ... and a copy back that cannot fit (hard links are copied as files) leaves it as it was
sb c37d workdir_bytes=8388608 -- /bin/sh -c 'head -c 1000000 /dev/zero >f && for i in 1 2 3 4 5 6 7 8 9 10 11 12; do ln f l$i; done'
expect_exit c37d 0
case $(jfield "$(final c37d)" workdir_error) in
*"exceeds the work dir limit"*"keeps its contents from before the run"*) ;;
*) bad "no workdir_error for the oversized copy back: $(final c37d)" ;;
esac
[ -z "$(ls -A "$T/work-c37d")" ] || bad "a partial copy reached the host: $(ls -A "$T/work-c37d")"
finish 37 "fill the work dir / exhaust its inodes -> ENOSPC, reported, host gets at most the limit"

# ---------------------------------------------------------------- 38
sb c38 -- /probes/escape setid
expect_probe_ok c38
m=$(stat -c %a "$T/work-c38/suid-true" 2>&1)
[ "$m" = 755 ] || bad "set-id copy left in the work dir with mode $m, want 755"
sb c38b allow_exec_in_work=1 -- /probes/escape setid exec-allowed
expect_probe_ok c38b
finish 38 "set-id file planted in /work loses its bits; exec from /tmp and /work refused (noexec) by default"

# ---------------------------------------------------------------- 39
# A host process of another uid must not write into a running sandbox's work
# dir (not through the host path, not through /proc/PID/root). As root the
# sandbox has its own uid; a non-root host has only its own uid to give, so
# there the documented outcome is that the host path is not the live /work
# (it only receives the copy at the end) and the sandbox's host uid is ours.
name=c39
w=$(newwork $name)
# as root: a root-owned 0700 work dir, the helper picks the sandbox's uid
[ "$ME" = 0 ] && chown 0:0 "$w" && chmod 700 "$w"
printf '%s\0' version=1 program=/probes/escape argv=escape argv=holdwork "workdir=$w" \
    "bind_ro=$PROBES" bind_ro_dest=/probes deadline_ms=30000 >"$T/$name.cfg"
"$HELPER" --config "$T/$name.cfg" --status-fd 9 9>"$T/$name.status" > >(cat >"$T/$name.out") 2>&1 </dev/null &
hp=$!
BG_PIDS+=("$hp")
wait_exec "$T/$name.status" || bad "did not start"
for i in $(seq 1 50); do grep -q 'holding /work' "$T/$name.out" && break; sleep 0.1; done
prog=$(jfield "$(execrec $name)" pid)
puid=$(awk '/^Uid:/ {print $2}' "/proc/$prog/status" 2>/dev/null)
if [ "$ME" = 0 ]; then
    [ "$puid" = "$SBUID" ] && [ "$puid" != 65534 ] || bad "sandbox runs as host uid '$puid', want the dedicated $SBUID"
    setpriv --reuid=65534 --regid=65534 --clear-groups -- sh -c "echo x >'$w/intruder'" 2>/dev/null &&
        bad "uid 65534 wrote into the host work dir"
    setpriv --reuid=65534 --regid=65534 --clear-groups -- sh -c "echo x >/proc/$prog/root/work/intruder" 2>/dev/null &&
        bad "uid 65534 wrote into /work through /proc/$prog/root"
else
    [ "$puid" = "$ME" ] || bad "sandbox runs as host uid '$puid', want $ME"
    echo x >"$w/intruder" 2>/dev/null
fi
kill -TERM "$hp"
wait "$hp"
[ -e "$w/intruder" ] && bad "an intruder file is in the work dir after the run"
[ "$(cat "$w/mine" 2>/dev/null)" = sandbox ] || bad "the sandbox's own file did not come back: $(ls -la "$w")"
grep -q '^FAIL' "$T/$name.out" && show $name
if [ "$ME" = 0 ]; then
    # a root-owned work dir that is not empty is refused, never re-owned
    w=$(newwork c39b)
    chown 0:0 "$w" && echo keep >"$w/root-file"
    printf '%s\0' version=1 program=/bin/true "workdir=$w" >"$T/c39b.cfg"
    "$HELPER" --config "$T/c39b.cfg" --status-fd 9 9>"$T/c39b.status" >/dev/null 2>&1 </dev/null
    RC=$?
    expect_setup_error c39b config 1 125
    [ "$(stat -c %u "$w")" = 0 ] || bad "the non-empty root-owned work dir was re-owned"
fi
finish 39 "a host process of another uid cannot write into a running sandbox's work dir"

# ---------------------------------------------------------------- 40
# issue 10.5: more calls denied (modify_ldt, listmount, statmount, open_tree_attr,
# lsm_set_self_attr), socket families allow-listed (unix, inet, inet6, netlink), real-time and
# nice limits and locked memory reset, loader/libc/shell hook variables never passed.
sb c40 env=GCONV_PATH=/work/gconv env=LOCPATH=/work/loc env=BASH_ENV=/work/rc env=GLIBC_TUNABLES=glibc.malloc.check=3 \
    env=LD_PRELOAD=/work/x.so env=ENV=/work/rc env=PS4='$(id)' env=LANG=C.UTF-8 -- /probes/escape harden
expect_probe_ok c40
finish 40 "modify_ldt, listmount, statmount, open_tree_attr, lsm_set_self_attr, unused socket families -> EPERM; RTPRIO/RTTIME/NICE/MEMLOCK reset; hook variables dropped"

# ---------------------------------------------------------------- 41
# issue 10.5: fds 0-2 must be a pipe, a socket or /dev/null. A host file as stdout could be
# reopened through /proc/self/fd and read back (a secret the host had written there) or
# truncated; a character device other than /dev/null (here /dev/zero) is refused too.
printf '%s\0' version=1 program=/bin/cat argv=cat argv=/proc/self/fd/1 >"$T/c41.cfg"
echo "host secret" >"$T/c41.hostfile"
"$HELPER" --config "$T/c41.cfg" --status-fd 9 9>"$T/c41.status" >>"$T/c41.hostfile" 2>"$T/c41.err" </dev/null
RC=$?
expect_setup_error c41 fds 9 125
grep -q 'stdout (fd 1) is a regular file' "$T/c41.status" || bad "status: $(cat "$T/c41.status")"
[ "$(cat "$T/c41.hostfile")" = "host secret" ] || bad "the host file changed: $(cat "$T/c41.hostfile")"
cp "$T/c41.cfg" "$T/c41b.cfg"
"$HELPER" --config "$T/c41b.cfg" --status-fd 9 9>"$T/c41b.status" >/dev/null 2>&1 </dev/zero
RC=$?
expect_setup_error c41b fds 9 125
grep -q 'stdin (fd 0) is a character device' "$T/c41b.status" || bad "status: $(cat "$T/c41b.status")"
# a pipe and /dev/null are accepted: the program runs
printf '%s\0' version=1 program=/bin/echo argv=echo argv=ran >"$T/c41c.cfg"
piped "$T/c41c.out" "$T/c41c.err" /dev/null "$HELPER" --config "$T/c41c.cfg" --status-fd 9 9>"$T/c41c.status"
[ "$RC" = 0 ] && [ "$(cat "$T/c41c.out")" = ran ] || bad "a pipe as stdout was refused (exit $RC): $(cat "$T/c41c.status")"
finish 41 "stdio must be a pipe, a socket or /dev/null: a host file as stdout and /dev/zero as stdin are refused before anything runs"

echo "# uid $(id -u), $(($(date +%s) - START)) s"
echo "battery: $PASS passed, $FAILN failed"
[ "$FAILN" = 0 ]
