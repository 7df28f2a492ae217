import CShellSupport
import DriverKit
import JSON
import Synchronization
import Threads
#if canImport(Glibc)
import Glibc
#endif

/// Why the host ended a run before the program did.
enum KillReason: String, Sendable {
    /// The wall-clock deadline (`timeout_ms` or the step's deadline) passed.
    case timeout
    /// stdout or stderr passed its byte cap.
    case outputLimit = "output_limit"
    /// The call was cancelled.
    case cancelled
}

/// Bytes read from one output pipe, kept up to a cap.
struct CapturedStream: Sendable {
    let cap: Int
    var bytes: [UInt8] = []
    /// Everything the program wrote that the host read (kept or not).
    var total = 0
    var truncated = false

    init(cap: Int) { self.cap = cap }

    /// Keeps what fits; returns true when this chunk crossed the cap.
    mutating func append(_ chunk: UnsafeRawBufferPointer) -> Bool {
        total += chunk.count
        let room = cap - bytes.count
        if room > 0 { bytes += chunk.prefix(room) }
        if total > cap && !truncated {
            truncated = true
            return true
        }
        return false
    }
}

/// What one spawned helper (or, in the weaker mode, program) did, as the host saw it.
struct RawRun: Sendable {
    var stdout: CapturedStream
    var stderr: CapturedStream
    /// The helper's status records, in order.
    var status: [JSONValue] = []
    /// waitpid status of the spawned process.
    var waitStatus: Int32 = 0
    /// Its own rusage (the weaker mode's only source of peak memory and CPU time).
    var maxRssKb: Int64 = 0
    var userMicros: Int64 = 0
    var sysMicros: Int64 = 0
    /// Set when the host ended the run.
    var killReason: KillReason?
    /// Spawn to exit, host clock.
    var startNanos: Int64 = 0
    var endNanos: Int64 = 0
}

/// argv/envp for C: strdup'ed strings owned by this object.
final class CStringArray: @unchecked Sendable {
    // @unchecked: immutable after init; the strings are only read (by posix_spawn/execve).
    private let pointers: [UnsafeMutablePointer<CChar>?]
    init(_ strings: [String]) { pointers = strings.map { strdup($0) } + [nil] }
    deinit { for p in pointers { free(p) } }
    func with<R>(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// How the process is started and stopped.
enum LaunchMode: Sendable {
    /// `nova-sandbox --config-fd 3 --status-fd 4`: the config message, read from fd 3.
    /// Stopped with SIGTERM (the helper kills the whole pid namespace), SIGKILL `escalateNanos` later.
    case helper(path: String, config: [UInt8], escalateNanos: Int64)
    /// The weaker mode: the program itself, its own session; stopped with SIGKILL to its group.
    /// `uid`/`gid` ≥ 0: the ids to switch to (the host runs as root).
    case direct(program: String, argv: [String], env: [String], cwd: String, limits: [Int64], uid: Int64, gid: Int64)
}

/// One run: pipes, the spawn (on `SpawnThread`), the poll loop with byte caps and the deadline,
/// cancellation and the final wait. `run()` blocks; call it on its own thread.
final class Execution: Sendable {
    private let mode: LaunchMode
    private let stdinBytes: [UInt8]?
    private let stdoutCap: Int
    private let stderrCap: Int
    /// CLOCK_MONOTONIC ns when the host kills the run (nil: never).
    private let deadlineNanos: Int64?
    /// Wakes the poll loop on cancellation.
    private let wakeFd: Int32
    private let cancelled = Atomic<Bool>(false)

    init(mode: LaunchMode, stdin: [UInt8]?, stdoutCap: Int, stderrCap: Int, deadlineNanos: Int64?) throws {
        self.mode = mode
        self.stdinBytes = stdin
        self.stdoutCap = stdoutCap
        self.stderrCap = stderrCap
        self.deadlineNanos = deadlineNanos
        let fd = nova_shell_eventfd()
        guard fd >= 0 else { throw DriverError.tool("spawn_failed", "eventfd: \(errnoText(-fd))") }
        wakeFd = fd
    }

    deinit { close(wakeFd) }

    /// Asks the run to stop (kill reason `cancelled`). Safe from any thread, any time.
    func cancel() {
        cancelled.store(true, ordering: .releasing)
        var one: UInt64 = 1
        _ = write(wakeFd, &one, 8)
    }

    private struct Pipe {
        var read: Int32
        var write: Int32
        static func make() throws -> Pipe {
            var fds: [Int32] = [-1, -1]
            let rc = nova_shell_pipe(&fds)
            guard rc == 0 else { throw DriverError.tool("spawn_failed", "pipe: \(errnoText(-rc))") }
            return Pipe(read: fds[0], write: fds[1])
        }
    }

    /// Spawns, pumps and reaps. Throws only when the process could not be started.
    func run() throws -> RawRun {
        // This thread may write to a pipe whose reader is gone: SIGPIPE must not reach the host.
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, nil)

        var owned: [Int32] = []
        defer { for fd in owned where fd >= 0 { close(fd) } }
        func track(_ p: Pipe) -> Pipe { owned += [p.read, p.write]; return p }
        func release(_ fd: inout Int32) {
            if fd >= 0, let i = owned.firstIndex(of: fd) { owned.remove(at: i) }
            if fd >= 0 { close(fd) }
            fd = -1
        }

        var out = try track(Pipe.make()), err = try track(Pipe.make())
        var input: Pipe? = nil
        if stdinBytes != nil { input = try track(Pipe.make()) }
        var status: Pipe? = nil
        var configFd: Int32 = -1
        var pid: pid_t = 0
        var run = RawRun(stdout: CapturedStream(cap: stdoutCap), stderr: CapturedStream(cap: stderrCap))
        run.startNanos = monotonicNanos()

        switch mode {
        case .helper(let path, let config, _):
            status = try track(Pipe.make())
            // The config goes through a pipe when it fits its buffer (written before the spawn),
            // else through a memfd.
            let cp = try track(Pipe.make())
            if config.count < max(4096, Int(nova_shell_pipe_size(cp.write))) {
                let written = config.withUnsafeBytes { write(cp.write, $0.baseAddress, $0.count) }
                guard written == config.count else { throw DriverError.tool("spawn_failed", "config pipe: \(errnoText())") }
                configFd = cp.read
            } else {
                let m = config.withUnsafeBytes { nova_shell_memfd_with($0.baseAddress, $0.count) }
                guard m >= 0 else { throw DriverError.tool("spawn_failed", "memfd: \(errnoText(-m))") }
                owned.append(m)
                configFd = m
            }
            var cpw = cp.write
            release(&cpw)
            let argv = CStringArray([path, "--config-fd", "3", "--status-fd", "4"])
            let envp = CStringArray(["PATH=/usr/bin:/bin"])
            let childFds: [Int32] = [input?.read ?? -1, out.write, err.write, configFd, status!.write]
            let (rc, p) = SpawnThread.run {
                var p: pid_t = 0
                let rc = argv.with { a in envp.with { e in childFds.withUnsafeBufferPointer { nova_shell_spawn(path, a, e, $0.baseAddress, 5, &p) } } }
                return (rc, p)
            }
            guard rc == 0 else {
                throw DriverError(.unsupported, code: "sandbox_unavailable", message: "cannot start the sandbox helper \(path): \(errnoText(-rc))")
            }
            pid = p
        case .direct(let program, let argvList, let envList, let cwd, let limits, let uid, let gid):
            let argv = CStringArray(argvList), envp = CStringArray(envList)
            let childFds: [Int32] = [input?.read ?? -1, out.write, err.write]
            let (rc, p) = SpawnThread.run {
                var p: pid_t = 0
                let rc = argv.with { a in envp.with { e in childFds.withUnsafeBufferPointer { fds in
                    limits.withUnsafeBufferPointer { nova_shell_spawn_direct(program, a, e, fds.baseAddress, cwd, $0.baseAddress, uid, gid, &p) } } } }
                return (rc, p)
            }
            guard rc == 0 else {
                let code = -rc == ENOENT ? "program_not_found" : "exec_failed"
                throw DriverError.tool(code, "cannot run \(program): \(errnoText(-rc))", details: ["errno": .int(Int(-rc))])
            }
            pid = p
        }
        // Only the child keeps its ends.
        release(&out.write)
        release(&err.write)
        if var i = input { release(&i.read); input = i }
        if var s = status { release(&s.write); status = s }
        release(&configFd)

        for fd in [out.read, err.read, status?.read ?? -1, input?.write ?? -1] where fd >= 0 {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        let pidfd = nova_shell_pidfd_open(pid)
        if pidfd >= 0 { owned.append(pidfd) }

        // pump() closes the stdin pipe itself (EOF for the program): it is no longer ours to close.
        if let i = input { owned.removeAll { $0 == i.write } }
        pump(pid: pid, pidfd: pidfd, out: out.read, err: err.read, status: status?.read ?? -1, stdinFd: input?.write ?? -1, run: &run)
        return run
    }

    /// The poll loop. Returns once the process was reaped.
    private func pump(pid: pid_t, pidfd: Int32, out: Int32, err: Int32, status: Int32, stdinFd: Int32, run: inout RawRun) {
        var outOpen = true, errOpen = true, statusOpen = status >= 0
        var stdinFd = stdinFd
        var stdinOffset = 0
        var statusBuffer: [UInt8] = []
        var exited = false
        var killSent: Int64? = nil      // when the first kill went out
        var escalated = false
        var drainUntil: Int64? = nil    // after the process ended: how long pipes may stay open
        var buffer = [UInt8](repeating: 0, count: 65536)

        func stop(_ reason: KillReason) {
            if run.killReason == nil { run.killReason = reason }
            guard killSent == nil, !exited else { return }
            killSent = monotonicNanos()
            switch mode {
            case .helper: kill(pid, SIGTERM)
            case .direct: _ = nova_shell_kill_group(pid, SIGKILL); kill(pid, SIGKILL)
            }
        }
        func reapIfDone() {
            guard !exited else { return }
            var st: Int32 = 0
            if nova_shell_try_wait(pid, &st, &run.maxRssKb, &run.userMicros, &run.sysMicros) == 1 {
                exited = true
                run.waitStatus = st
                run.endNanos = monotonicNanos()
                if case .direct = mode { _ = nova_shell_kill_group(pid, SIGKILL) }  // leftovers of its session
                drainUntil = monotonicNanos() + 2_000_000_000
            }
        }
        func closeStdin() {
            if stdinFd >= 0 { close(stdinFd); stdinFd = -1 }
        }
        if stdinBytes?.isEmpty ?? true { closeStdin() }

        while true {
            if cancelled.load(ordering: .acquiring) { stop(.cancelled) }
            let now = monotonicNanos()
            if let d = deadlineNanos, now >= d, !exited { stop(.timeout) }
            if let k = killSent, !escalated, !exited {
                let grace: Int64
                if case .helper(_, _, let e) = mode { grace = e } else { grace = 200_000_000 }
                if now - k >= grace {
                    escalated = true
                    kill(pid, SIGKILL)
                }
            }
            reapIfDone()
            let pipesOpen = outOpen || errOpen || statusOpen
            if exited && (!pipesOpen || (drainUntil.map { monotonicNanos() >= $0 } ?? false)) { break }
            if exited { closeStdin() }

            var fds: [pollfd] = []
            fds.append(pollfd(fd: outOpen ? out : -1, events: Int16(POLLIN), revents: 0))
            fds.append(pollfd(fd: errOpen ? err : -1, events: Int16(POLLIN), revents: 0))
            fds.append(pollfd(fd: statusOpen ? status : -1, events: Int16(POLLIN), revents: 0))
            fds.append(pollfd(fd: stdinFd, events: Int16(POLLOUT), revents: 0))
            fds.append(pollfd(fd: exited ? -1 : pidfd, events: Int16(POLLIN), revents: 0))
            fds.append(pollfd(fd: wakeFd, events: Int16(POLLIN), revents: 0))

            // Sleep until the next timer: deadline, escalation, drain end; 50 ms without a pidfd.
            var wakeAt: Int64? = nil
            func consider(_ t: Int64?) { if let t { wakeAt = min(wakeAt ?? t, t) } }
            if !exited {
                if killSent == nil { consider(deadlineNanos) }
                if let k = killSent, !escalated {
                    if case .helper(_, _, let e) = mode { consider(k + e) } else { consider(k + 200_000_000) }
                }
                if pidfd < 0 { consider(monotonicNanos() + 50_000_000) }
            } else {
                consider(drainUntil)
            }
            var timeout: Int32 = -1
            if let w = wakeAt { timeout = Int32(clamping: max(0, (w - monotonicNanos() + 999_999) / 1_000_000)) }
            let n = poll(&fds, nfds_t(fds.count), timeout)
            if n < 0 && errno != EINTR { break }
            if n <= 0 { continue }

            func drain(_ fd: Int32, _ open: inout Bool, _ sink: (UnsafeRawBufferPointer) -> Void) {
                while open {
                    let r = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if r > 0 {
                        buffer.withUnsafeBytes { sink(UnsafeRawBufferPointer(rebasing: $0[0..<r])) }
                        continue
                    }
                    if r < 0 && errno == EINTR { continue }
                    if r < 0 && errno == EAGAIN { return }
                    open = false
                }
            }
            if fds[0].revents != 0 {
                drain(out, &outOpen) { chunk in if run.stdout.append(chunk) { stop(.outputLimit) } }
            }
            if fds[1].revents != 0 {
                drain(err, &errOpen) { chunk in if run.stderr.append(chunk) { stop(.outputLimit) } }
            }
            if fds[2].revents != 0 {
                drain(status, &statusOpen) { chunk in statusBuffer += chunk }
                while let nl = statusBuffer.firstIndex(of: 0x0A) {
                    let line = Array(statusBuffer[..<nl])
                    statusBuffer.removeSubrange(...nl)
                    if let v = try? JSONValue.parse(line) { run.status.append(v) }
                }
            }
            if fds[3].revents != 0, stdinFd >= 0, let bytes = stdinBytes {
                if fds[3].revents & Int16(POLLOUT) != 0 {
                    let w = bytes.withUnsafeBytes { write(stdinFd, $0.baseAddress! + stdinOffset, min(65536, $0.count - stdinOffset)) }
                    if w > 0 { stdinOffset += w }
                    if (w < 0 && errno != EAGAIN && errno != EINTR) || stdinOffset >= bytes.count { closeStdin() }
                } else {
                    closeStdin()  // POLLERR/POLLHUP: the program closed its stdin
                }
            }
            if fds[5].revents != 0 {
                var v: UInt64 = 0
                _ = read(wakeFd, &v, 8)
            }
        }
        closeStdin()
        if !exited {
            // Pipes failed or poll errored: make sure the process is gone, then reap it.
            kill(pid, SIGKILL)
            var st: Int32 = 0
            _ = nova_shell_wait(pid, &st, &run.maxRssKb, &run.userMicros, &run.sysMicros)
            run.waitStatus = st
            run.endNanos = monotonicNanos()
        }
        if !statusBuffer.isEmpty, let v = try? JSONValue.parse(statusBuffer) { run.status.append(v) }
    }
}

/// Starts a detached thread running `body` (a blocking run must not occupy the cooperative pool).
func startThread(_ body: @escaping @Sendable () -> Void) throws {
    guard PosixThread.tryDetach(stackSize: 512 << 10, body) else {
        throw DriverError.tool("spawn_failed", "cannot start an I/O thread (pthread_create failed: too many threads or no memory)")
    }
}

/// Output bytes as JSON text: UTF-8 when they are (a multi-byte sequence cut by truncation is
/// dropped), else base64.
enum OutputText {
    static func encode(_ bytes: [UInt8], truncated: Bool) -> (String, String) {
        if let s = String(validating: bytes, as: UTF8.self) { return (s, "utf-8") }
        if truncated {
            for cut in 1...3 where bytes.count >= cut {
                if let s = String(validating: bytes.dropLast(cut), as: UTF8.self) { return (s, "utf-8") }
            }
        }
        return (base64(bytes), "base64")
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [table[Int(n >> 18)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)], table[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [table[Int(n >> 18)], table[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [table[Int(n >> 18)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
