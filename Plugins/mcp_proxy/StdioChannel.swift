import CShellSupport
import Dispatch
import DriverKit
import JSON
import Synchronization
import Threads
#if canImport(Glibc)
import Glibc
#endif

/// An MCP server as a child process: newline-delimited JSON-RPC on its stdin and stdout, its
/// stderr forwarded to the host log.
///
/// The child is spawned from `SpawnThread` (one thread that lives as long as the process) with
/// PR_SET_PDEATHSIG(SIGKILL) and a session of its own: the parent-death signal follows the
/// *thread* that forked, so a server started from a transient Dispatch or cooperative-pool
/// thread would be killed when that thread is retired. Each child has three threads of ours:
/// a writer (it may block on a full pipe without holding a pool thread, and has every signal
/// blocked so a write to a dead child gives EPIPE, never a SIGPIPE for the host), a stdout
/// reader and a stderr reader.
final class StdioChannel: MCPChannel, @unchecked Sendable {
    // @unchecked: pid and descriptors are immutable after init; the outbox is behind a Mutex.
    let pid: pid_t
    private let stdinFd: Int32
    private let outbox = Mutex<(queue: [[UInt8]], closed: Bool)>(([], false))
    private let wake = DispatchSemaphore(value: 0)
    private let closedOnce = Atomic<Bool>(false)
    /// The server's last stderr line: logged when it exits on its own (a Python traceback's
    /// last line says why), never put in call errors, which callers see.
    private let lastStderrLine = Mutex<String?>(nil)
    private let stderrDone = DispatchSemaphore(value: 0)
    private let session: RPCSession
    private let server: String
    private let log: @Sendable (LogLevel, String) -> Void

    /// Starts `program`; throws a `DriverError` saying why it could not be started.
    init(program: String, arguments: [String], environment: [String], workingDirectory: String, maxMessageBytes: Int,
         server: String, session: RPCSession, log: @escaping @Sendable (LogLevel, String) -> Void) throws {
        self.session = session
        self.server = server
        self.log = log
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1], errors: [Int32] = [-1, -1]
        for i in 0..<3 {
            var fds: [Int32] = [-1, -1]
            let rc = nova_shell_pipe(&fds)
            guard rc == 0 else {
                for fd in toChild + fromChild + errors where fd >= 0 { Glibc.close(fd) }
                throw DriverError.tool("spawn_failed", "server '\(server)': pipe: \(String(cString: strerror(-rc)))")
            }
            switch i {
            case 0: toChild = fds
            case 1: fromChild = fds
            default: errors = fds
            }
        }
        let argv = [program] + arguments
        let childFds: [Int32] = [toChild[0], fromChild[1], errors[1]]
        let noLimits: [Int64] = [-1, -1, -1, -1, -1]
        let (rc, childPid) = SpawnThread.run { () -> (Int32, pid_t) in
            var p: pid_t = 0
            let rc = withCStrings(argv) { a in withCStrings(environment) { e in
                childFds.withUnsafeBufferPointer { fds in noLimits.withUnsafeBufferPointer { limits in
                    nova_shell_spawn_direct(program, a, e, fds.baseAddress, workingDirectory, limits.baseAddress, -1, -1, &p)
                } }
            } }
            return (rc, p)
        }
        // Only the child keeps its ends.
        Glibc.close(toChild[0]); Glibc.close(fromChild[1]); Glibc.close(errors[1])
        guard rc == 0 else {
            Glibc.close(toChild[1]); Glibc.close(fromChild[0]); Glibc.close(errors[0])
            throw DriverError.tool("spawn_failed", "server '\(server)': cannot run \(program): \(String(cString: strerror(-rc)))")
        }
        pid = childPid
        stdinFd = toChild[1]
        let (stdoutFd, stderrFd) = (fromChild[0], errors[0])
        session.attach(self)
        PosixThread.detach { [self] in writeLoop() }
        PosixThread.detach { [self] in
            readLoop(stdoutFd, maxMessageBytes: maxMessageBytes)
            Glibc.close(stdoutFd)
            // stdout ended: the server exited or closed it. Make sure it is gone, then reap it.
            let stopping = closedOnce.load(ordering: .acquiring)
            let how = stopAndReap()
            // The child is gone; let the stderr reader drain what it wrote last.
            _ = stderrDone.wait(timeout: .now() + .seconds(1))
            if !stopping, let last = lastStderrLine.withLock({ $0 }) {
                log(.warning, "server '\(server)' \(how); its last stderr line: \(last)")
            }
            session.channelClosed("server '\(server)' \(how)")
        }
        PosixThread.detach { [self] in
            forwardStderr(stderrFd)
            Glibc.close(stderrFd)
            stderrDone.signal()
        }
    }

    func send(_ message: JSONValue) {
        let line = message.serializedBytes() + [0x0A]
        let queued = outbox.withLock { box -> Bool in
            if box.closed { return false }
            box.queue.append(line)
            return true
        }
        if queued { wake.signal() }
    }

    /// A stdio request cannot be abandoned beyond `notifications/cancelled`: its answer, if any
    /// still comes, is read and dropped by the session.
    func abandon(requestId: Int) {}

    func close() {
        guard !closedOnce.exchange(true, ordering: .acquiringAndReleasing) else { return }
        outbox.withLock { $0.closed = true }
        wake.signal()
        // The writer closes stdin; a server that ignores EOF is killed by stopAndReap (SIGTERM
        // to its group, SIGKILL after a grace period) once its stdout closes — or now.
        _ = nova_shell_kill_group(pid, SIGTERM)
    }

    private func writeLoop() {
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, nil)
        defer { Glibc.close(stdinFd) }
        while true {
            wake.wait()
            let (batch, closed) = outbox.withLock { box -> ([[UInt8]], Bool) in
                defer { box.queue = [] }
                return (box.queue, box.closed)
            }
            for line in batch {
                var offset = 0
                while offset < line.count {
                    let n = line.withUnsafeBytes { write(stdinFd, $0.baseAddress! + offset, $0.count - offset) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return }  // the child closed stdin or died: the reader reports it
                    offset += n
                }
            }
            if closed { return }
        }
    }

    /// Reads stdout line by line into the session; returns at EOF or on an oversized message.
    private func readLoop(_ fd: Int32, maxMessageBytes: Int) {
        readLines(fd, maxLine: maxMessageBytes, chunk: 65_536) { [self] line in
            guard let line else {
                log(.error, "server '\(server)' sent a message larger than \(maxMessageBytes) bytes; closing the connection")
                return false
            }
            deliver(line)
            return true
        }
    }

    private func deliver(_ line: [UInt8]) {
        guard line.contains(where: { $0 != 0x20 && $0 != 0x0D && $0 != 0x09 }) else { return }
        do { session.receive(try JSONValue.parse(line)) } catch {
            // Servers must not print anything but messages on stdout; say so, and go on.
            log(.warning, "server '\(server)' wrote a line on stdout that is not JSON-RPC (\(line.count) bytes): \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
    }

    /// The server's stderr, line by line, to the host log (an endless line is dropped, not kept).
    private func forwardStderr(_ fd: Int32) {
        readLines(fd, maxLine: 8192, chunk: 8192) { [self] line in
            if let line, !line.isEmpty {
                let text = String(decoding: line.prefix(2000), as: UTF8.self)
                lastStderrLine.withLock { $0 = String(text.prefix(500)) }
                log(.debug, "server '\(server)' stderr: \(text)")
            }
            return true
        }
    }

    /// Reads `fd` until EOF, handing each line (without its newline) to `body`, or nil for a
    /// line longer than `maxLine` (which is dropped). Stops when `body` returns false.
    private func readLines(_ fd: Int32, maxLine: Int, chunk: Int, _ body: ([UInt8]?) -> Bool) {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            var start = 0
            for i in 0..<n where buffer[i] == 0x0A {
                pending.append(contentsOf: buffer[start..<i])
                guard body(pending) else { return }
                pending.removeAll(keepingCapacity: true)
                start = i + 1
            }
            pending.append(contentsOf: buffer[start..<n])
            if pending.count > maxLine {
                pending.removeAll()
                guard body(nil) else { return }
            }
        }
    }

    /// Ends the child (SIGTERM to its group, SIGKILL after 2 s) and waits for it; says how it ended.
    private func stopAndReap() -> String {
        outbox.withLock { $0.closed = true }
        wake.signal()
        var status: Int32 = 0, rss: Int64 = 0, user: Int64 = 0, sys: Int64 = 0
        var ended = nova_shell_try_wait(pid, &status, &rss, &user, &sys) == 1
        if !ended {
            _ = nova_shell_kill_group(pid, SIGTERM)
            for _ in 0..<200 where !ended {
                usleep(10_000)
                ended = nova_shell_try_wait(pid, &status, &rss, &user, &sys) == 1
            }
            if !ended {
                _ = nova_shell_kill_group(pid, SIGKILL)
                _ = nova_shell_wait(pid, &status, &rss, &user, &sys)
            }
        }
        if status & 0x7F == 0 { return "exited with status \((status >> 8) & 0xFF)" }
        return "was killed by signal \(status & 0x7F)"
    }
}

/// `strings` as a NULL-terminated `char *[]` for the duration of `body`.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
