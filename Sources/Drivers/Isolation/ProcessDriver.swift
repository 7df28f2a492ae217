import Dispatch
import Foundation
import JSON
import Synchronization
import Threads
import CHostSupport
#if canImport(Glibc)
import Glibc
#endif

/// A driver running in a runner child process (`nova-host driver-runner`), reached over a
/// socketpair with length-framed messages (`RunnerFrame`). Same semantics as in process (async completion, cancel,
/// deadlines, logs, usage), but a segfault or abort kills the runner, not the host: the calls in
/// flight fail with a clear error, the runner is restarted with backoff on the next call, and a
/// driver that keeps crashing is quarantined.
public final class ProcessDriver: ToolDriver, Sendable {
    public let name: String
    public let displayPath: String
    let libraryPath: String
    let config: JSONValue
    let runnerCommand: [String]
    /// The instance's manifest as the runner last sent it (its tools may change: ABI 1.1).
    public var manifest: DriverManifest { currentManifest.withLock { $0 } }
    private let currentManifest: Mutex<DriverManifest>
    /// Whether the runner's instance implements `refresh` (ABI 1.1).
    public let refreshesOnReload: Bool
    public let abiVersion: ABIVersion

    /// Crashes within `crashWindowNanos` that quarantine the driver.
    public static let quarantineAfter = 3
    static let crashWindowNanos: Int64 = 60_000_000_000

    private final class Runner: Sendable {
        let pid: pid_t
        let channel: FrameChannel
        /// What the reader thread sleeps in: an epoll set with the socket, which a caller that
        /// reads the socket itself disarms, so that the thread is not woken for those frames.
        let epoll: Int32
        /// Held by whoever reads the socket (the reader thread or one spinning caller): the
        /// channel's read buffer is used by one thread at a time.
        private let readToken = Atomic<Bool>(false)

        init(pid: pid_t, channel: FrameChannel) {
            self.pid = pid
            self.channel = channel
            epoll = nova_epoll_watching(channel.fd)
        }

        // Closed only here, when nobody can use it any more: a closed number could be reused.
        deinit { Glibc.close(epoll) }

        /// Whether the reader thread is woken when the socket has something to read.
        func wakeReader(_ on: Bool) { _ = nova_epoll_set(epoll, channel.fd, on ? 1 : 0) }

        func takeReadToken() -> Bool { !readToken.exchange(true, ordering: .acquiring) }
        func releaseReadToken() { readToken.store(false, ordering: .releasing) }
    }

    /// Who waits for a call's result.
    private enum Waiter {
        /// The caller polls the socket for it (it holds the read token).
        case spinning
        /// The caller is suspended; the reader resumes it.
        case waiting(CheckedContinuation<ToolCallResult, any Error>)
        /// The result arrived (or the call failed) while the caller was spinning.
        case done(Result<ToolCallResult, any Error>)
    }

    private struct Pending {
        var waiter: Waiter
        var runner: Runner
    }

    /// How long a caller polls for its result before it suspends (issue 15). A sleeping
    /// thread's wake-up costs tens of µs on a busy 2-core host; an echo call's round trip to a
    /// runner that is polling too takes a few. The bound caps the CPU a slow call costs.
    static let callerSpinNanos: Int64 = 50_000
    /// After this many polls in a row that ended without the result (a driver slower than the
    /// poll), calls stop polling, except one in `spinProbeEvery` that checks whether the
    /// driver has become fast again.
    static let spinMissLimit = 4
    static let spinProbeEvery: UInt64 = 32

    private struct State {
        var runner: Runner?
        var pending: [UInt64: Pending] = [:]
        var crashTimes: [Int64] = []
        var lastCrash: String?
        var quarantined: String?
        var stopped = false
        var restarts = 0
        /// Runners whose end has been seen (reaped), by pid.
        var ended: Set<pid_t> = []
    }

    private let state = Mutex(State())
    private let nextId = Atomic<UInt64>(1)
    /// Polls in a row that ended without the result (see `spinMissLimit`).
    private let spinMisses = Atomic<Int>(0)
    /// The registry's generation number (for log records).
    let generation: Int?

    private init(name: String, displayPath: String, libraryPath: String, config: JSONValue, runnerCommand: [String],
                 manifest: DriverManifest, refreshes: Bool, generation: Int?, abiVersion: ABIVersion) {
        self.generation = generation
        self.name = name
        self.displayPath = displayPath
        self.libraryPath = libraryPath
        self.config = config
        self.runnerCommand = runnerCommand
        self.currentManifest = Mutex(manifest)
        self.refreshesOnReload = refreshes
        self.abiVersion = abiVersion
    }

    /// The `nova-host` binary that hosts runners: `NOVA_HOST_BIN`, this process if it is
    /// nova-host, else a `nova-host` beside this executable.
    public static func defaultRunnerExecutable() -> String {
        if let bin = ProcessInfo.processInfo.environment["NOVA_HOST_BIN"] { return bin }
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        if me.hasSuffix("/nova-host") { return me }
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("nova-host").path
    }

    /// Starts a runner, loads the library in it and reads its manifest. The host never opens
    /// the library itself, so a driver that crashes at load cannot take the host down.
    public static func start(name: String, displayPath: String, libraryPath: String, config: JSONValue,
                             runnerCommand: [String], generation: Int? = nil) throws(DriverLoadError) -> ProcessDriver {
        let (runner, ready) = try spawn(name: name, displayPath: displayPath, libraryPath: libraryPath, config: config, runnerCommand: runnerCommand)
        guard let m = ready["manifest"], let manifest = try? DriverManifest(json: m) else {
            kill(runner.pid, SIGKILL); reap(runner.pid)
            throw .runnerFailed(path: displayPath, reason: "the runner sent no valid manifest")
        }
        let abiParts = (ready["abi"]?.stringValue ?? "1.0").split(separator: ".").compactMap { UInt16($0) }
        let driver = ProcessDriver(name: name, displayPath: displayPath, libraryPath: libraryPath, config: config,
                                   runnerCommand: runnerCommand, manifest: manifest, refreshes: ready["refreshes"]?.boolValue ?? false,
                                   generation: generation,
                                   abiVersion: ABIVersion(major: abiParts.first ?? 1, minor: abiParts.count > 1 ? abiParts[1] : 0))
        driver.adopt(runner)
        return driver
    }

    /// Spawns `nova-host driver-runner` with one end of a socketpair as fd 3 and performs the
    /// init handshake.
    private static func spawn(name: String, displayPath: String, libraryPath: String, config: JSONValue,
                              runnerCommand: [String]) throws(DriverLoadError) -> (Runner, JSONValue) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw .runnerFailed(path: displayPath, reason: "socketpair: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        // The runner gets fds 0-3 only: not the host's sockets (its listener, client
        // connections) that are not close-on-exec, which a runner outliving the host would hold.
        _ = nova_spawn_actions_close_from(&actions, 4)
        let argv = runnerCommand + ["--name", name, "--library", libraryPath]
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        // The runner inherits our environment; a crashing driver should not print a Swift
        // backtrace into the host's stderr (the host reports the crash itself).
        // NOVA_RUNNER_PARENT: the runner exits at once if we died before it armed PDEATHSIG.
        var env: [UnsafeMutablePointer<CChar>?] = [strdup("SWIFT_BACKTRACE=enable=no"), strdup("NOVA_RUNNER_PARENT=\(getpid())")]
        var e = environ
        while let entry = e.pointee {
            if strncmp(entry, "SWIFT_BACKTRACE=", 16) != 0 && strncmp(entry, "NOVA_RUNNER_PARENT=", 19) != 0 { env.append(strdup(entry)) }
            e += 1
        }
        env.append(nil)
        defer { for x in env { free(x) } }
        var pid: pid_t = 0
        // From the one long-lived spawn thread: the runner arms PDEATHSIG, which follows the
        // thread that forked it (a retired Dispatch worker would kill it mid-call).
        let rc = SpawnThread.run { posix_spawn(&pid, argv[0], &actions, nil, &cArgs, &env) }
        Glibc.close(fds[1])
        guard rc == 0 else {
            Glibc.close(fds[0])
            throw .runnerFailed(path: displayPath, reason: "cannot start runner \(argv[0]): \(String(cString: strerror(rc)))")
        }
        let channel = FrameChannel(fd: fds[0])
        let initFrame: JSONValue = ["op": "init", "protocol": .int(RunnerFrame.version), "config": config]
        guard channel.send(RunnerFrame.json(initFrame)), let reply = channel.receive(), case .json(let ready)? = RunnerFrame.decode(reply) else {
            channel.close()
            let why = reap(pid)
            throw .runnerFailed(path: displayPath, reason: "the runner died while loading the driver (\(why))")
        }
        if ready["op"]?.stringValue != "ready" || ready["protocol"]?.intValue != RunnerFrame.version {
            channel.close()
            kill(pid, SIGKILL); reap(pid)
            throw .runnerFailed(path: displayPath, reason: ready["message"]?.stringValue
                                ?? (ready["op"]?.stringValue == "ready" ? "the runner speaks another protocol (a different build of nova-host)" : "the runner refused the driver"))
        }
        return (Runner(pid: pid, channel: channel), ready)
    }

    /// Waits for a child and describes how it ended.
    @discardableResult
    static func reap(_ pid: pid_t) -> String {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if status & 0x7F == 0 { return "exit status \((status >> 8) & 0xFF)" }
        let sig = status & 0x7F
        return "killed by signal \(sig) (\(String(cString: strsignal(sig))))"
    }

    private func adopt(_ runner: Runner) {
        state.withLock { $0.runner = runner }
        startReader(runner)
    }

    /// Starts the thread that reads `runner`'s frames, named (as `top -H` and /proc show it)
    /// `nova-rd-` and the driver's name, cut to Linux's 15 bytes: a longer name is not set.
    private func startReader(_ runner: Runner) {
        let threadName = String(decoding: Array("nova-rd-\(name)".utf8.prefix(15)), as: UTF8.self)
        let thread = Thread { [self] in
            Thread.current.name = threadName  // set from the thread itself: Foundation names the OS thread only then
            readLoop(runner)
        }
        thread.start()
    }

    /// Reads results and logs until the runner's end of the socket closes. Sleeps in epoll, not
    /// in `read`, so that a caller can take over reading (`spin`) without this thread waking.
    private func readLoop(_ runner: Runner) {
        reading: while true {
            if nova_epoll_wait(runner.epoll) < 0 {
                if errno == EINTR { continue }
                break
            }
            // A caller reads now; it wakes us again (rearms) when it stops.
            guard runner.takeReadToken() else { sched_yield(); continue }
            while true {
                switch runner.channel.poll() {
                case .frame(let frame): handle(frame)
                case .empty: runner.releaseReadToken(); continue reading
                // The token stays taken: no caller reads a closed socket.
                case .closed: break reading
                }
            }
        }
        runnerEnded(runner)
    }

    /// Ends call `id` with `result`: resumes its caller, or leaves the result for a caller that
    /// is polling for it. Nothing if the call ended already (deadline, cancel).
    private func finish(_ id: UInt64, _ result: Result<ToolCallResult, any Error>) {
        let waiting = state.withLock { s -> CheckedContinuation<ToolCallResult, any Error>? in
            guard var pending = s.pending[id] else { return nil }
            switch pending.waiter {
            case .waiting(let c):
                s.pending[id] = nil
                return c
            case .spinning:
                pending.waiter = .done(result)
                s.pending[id] = pending
                return nil
            case .done:
                return nil
            }
        }
        waiting?.resume(with: result)
    }

    /// A frame from the runner, read by the reader thread or by a polling caller.
    private func handle(_ frame: [UInt8]) {
            switch RunnerFrame.decode(frame) {
            case .ok(let id, let usage, let output)?:
                finish(id, .success(ToolCallResult(output: output, usage: usage)))
            case .failed(let id, let usage, let e)?:
                let kind = ToolCallError.Kind(rawValue: e["kind"]?.stringValue ?? "") ?? .internal
                finish(id, .failure(ToolCallError(kind: kind, code: e["code"]?.stringValue, message: e["message"]?.stringValue ?? "failed",
                                                  source: e["source"]?.stringValue ?? "driver", usage: usage)))
            case .json(let msg)? where msg["op"]?.stringValue == "tools":
                // The instance's tool list changed (ABI 1.1); the runner checked it already.
                if let m = msg["manifest"], let manifest = try? DriverManifest(json: m) { currentManifest.withLock { $0 = manifest } }
            case .json(let msg)? where msg["op"]?.stringValue == "log":
                // The runner sends the host's call id (`call`) and run id when the record was
                // made inside a call.
                DriverLogging.emit(DriverLogRecord(driver: name, level: Int32(msg["level"]?.intValue ?? 2),
                                                   channel: msg["channel"]?.stringValue ?? "system_log", message: msg["message"]?.stringValue ?? "",
                                                   generation: generation, callId: msg["call"]?.intValue.map { UInt64($0) },
                                                   runId: msg["run"]?.stringValue))
            default:
                break
            }
    }

    /// The runner is gone: fail its calls in flight, count the crash, maybe quarantine.
    private func runnerEnded(_ runner: Runner) {
        runner.channel.close()
        let how = Self.reap(runner.pid)
        state.withLock { _ = $0.ended.insert(runner.pid) }
        let now = nova_monotonic_ns()
        let crashed = ToolCallError(kind: .internal, code: "driver_crashed",
                                    message: "driver '\(name)' crashed during the call (runner \(how)); the host is unaffected")
        let (failed, stopped) = state.withLock { s -> ([CheckedContinuation<ToolCallResult, any Error>], Bool) in
            var out: [CheckedContinuation<ToolCallResult, any Error>] = []
            for (id, p) in s.pending where p.runner === runner {
                switch p.waiter {
                case .waiting(let c):
                    out.append(c)
                    s.pending[id] = nil
                case .spinning:
                    s.pending[id]?.waiter = .done(.failure(crashed))
                case .done:
                    break
                }
            }
            if s.runner === runner { s.runner = nil }
            if !s.stopped {
                s.crashTimes = s.crashTimes.filter { now - $0 < Self.crashWindowNanos } + [now]
                s.lastCrash = how
                if s.crashTimes.count >= Self.quarantineAfter && s.quarantined == nil {
                    s.quarantined = "driver '\(name)' quarantined after \(s.crashTimes.count) runner crashes within 60 s (last: \(how)); fix it and reload"
                }
            }
            return (out, s.stopped)
        }
        if stopped { return }
        DriverLogging.emit(DriverLogRecord(driver: name, level: 4, channel: "system_log", message: "driver runner for '\(name)' ended: \(how)"))
        for c in failed { c.resume(throwing: crashed) }
    }

    /// Why the driver is quarantined, if it is.
    public var quarantineReason: String? { state.withLock { $0.quarantined } }

    /// How many times the runner was restarted after a crash.
    public var restarts: Int { state.withLock { $0.restarts } }

    /// The running runner, restarting a crashed one with exponential backoff.
    private func currentRunner() async throws -> Runner {
        let (existing, quarantined, crashes) = state.withLock { ($0.runner, $0.quarantined, $0.crashTimes) }
        if let quarantined { throw ToolCallError(kind: .unavailable, code: "quarantined", message: quarantined) }
        if let existing { return existing }
        // Backoff: 50 ms doubled per recent crash, at most 2 s.
        if let last = crashes.last {
            let backoff = min(Int64(50_000_000) << Int64(max(0, crashes.count - 1)), 2_000_000_000)
            let wait = last + backoff - nova_monotonic_ns()
            if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait)) }
        }
        do {
            let (runner, ready) = try Self.spawn(name: name, displayPath: displayPath, libraryPath: libraryPath, config: config, runnerCommand: runnerCommand)
            // A new instance: its tools are listed afresh.
            if let m = ready["manifest"], let manifest = try? DriverManifest(json: m) { currentManifest.withLock { $0 = manifest } }
            let winner = state.withLock { s -> Runner in
                if let r = s.runner { return r }
                s.runner = runner
                s.restarts += 1
                return runner
            }
            if winner === runner {
                startReader(runner)
            } else {
                runner.channel.close(); kill(runner.pid, SIGKILL); Self.reap(runner.pid)
            }
            return winner
        } catch {
            throw ToolCallError(kind: .unavailable, message: error.description)
        }
    }

    public func call(_ request: ToolCallRequest) async throws -> ToolCallResult {
        let runner = try await currentRunner()
        let id = nextId.wrappingAdd(1, ordering: .relaxed).oldValue
        let frame = RunnerFrame.call(id: id, deadlineNanos: request.deadlineNanos, tool: request.tool, run: DriverCallContext.runId,
                                     input: request.input.isEmpty ? Array("{}".utf8) : request.input)
        let tool = request.tool  // for the messages of a call that fails here (built only then)
        let notStarted = ToolCallError(kind: .internal, code: "driver_crashed", message: "driver '\(name)' runner ended before the call started")
        return try await withTaskCancellationHandler {
            // Fast path: if this is the only call in flight, send and poll for the result on
            // this thread, which then returns it without a wake-up of the reader thread or of
            // a suspended task. Concurrent calls (their results arrive together, and the
            // reader thread hands them out in one go) and a driver slower than the poll take
            // the path below.
            var sent = false, spinning = false
            if spinWorthTrying(id) && runner.takeReadToken() {
                runner.wakeReader(false)
                let registered = state.withLock { s -> Bool? in
                    guard s.runner === runner else { return nil }
                    guard s.pending.isEmpty else { return false }
                    s.pending[id] = Pending(waiter: .spinning, runner: runner)
                    return true
                }
                guard let registered else {
                    stopReading(runner)
                    throw notStarted
                }
                if registered {
                    sent = runner.channel.send(frame)
                    if sent, let result = spin(runner, id) {
                        stopReading(runner)
                        spinMisses.store(0, ordering: .relaxed)
                        return try result.get()
                    }
                    spinMisses.add(1, ordering: .relaxed)
                    spinning = true
                } else {
                    stopReading(runner)
                }
            }
            return try await withCheckedThrowingContinuation { (c: CheckedContinuation<ToolCallResult, any Error>) in
                if spinning {
                    // Hand the wait to the reader thread: the frames read already first, then
                    // register, then give back the socket (the result may arrive right after).
                    while let frame = runner.channel.buffered() { handle(frame) }
                    let done = state.withLock { s -> Result<ToolCallResult, any Error>? in
                        guard var pending = s.pending[id] else { return .failure(ToolCallError(kind: .cancelled, message: "\(name).\(tool): cancelled")) }
                        switch pending.waiter {
                        case .done(let result):
                            s.pending[id] = nil
                            return result
                        case .spinning, .waiting:
                            pending.waiter = .waiting(c)
                            s.pending[id] = pending
                            return nil
                        }
                    }
                    stopReading(runner)
                    if let done {
                        c.resume(with: done)
                        return
                    }
                } else {
                    let registered = state.withLock { s -> Bool in
                        guard s.runner === runner else { return false }
                        s.pending[id] = Pending(waiter: .waiting(c), runner: runner)
                        return true
                    }
                    guard registered else {
                        c.resume(throwing: notStarted)
                        return
                    }
                    sent = runner.channel.send(frame)
                }
                // If the send failed, the reader sees the end of the stream and fails the call.
                guard sent else { return }
                if let deadline = request.deadlineNanos {
                    let wait = max(0, deadline + CallTable.deadlineGraceNanos - nova_monotonic_ns())
                    DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(wait))) { [self] in
                        finish(id, .failure(ToolCallError(kind: .deadline, message: "\(name).\(tool): deadline exceeded (the driver did not answer in time)")))
                    }
                }
            }
        } onCancel: {
            runner.channel.send(RunnerFrame.cancel(id: id))
            finish(id, .failure(ToolCallError(kind: .cancelled, message: "\(name).\(tool): cancelled")))
        }
    }

    /// Whether call `id` should poll for its result: yes unless the last polls all missed (a
    /// slow driver), and then still one call in `spinProbeEvery`.
    private func spinWorthTrying(_ id: UInt64) -> Bool {
        spinMisses.load(ordering: .relaxed) < Self.spinMissLimit || id % Self.spinProbeEvery == 0
    }

    /// Reads the socket (the caller holds the read token) until call `id` has its result or
    /// `callerSpinNanos` have passed, handling every frame it reads as the reader thread would.
    /// nil: no result yet (or the socket closed; the reader thread sees that once rearmed).
    private func spin(_ runner: Runner, _ id: UInt64) -> Result<ToolCallResult, any Error>? {
        let until = nova_monotonic_ns() + Self.callerSpinNanos
        while true {
            switch runner.channel.poll() {
            case .frame(let frame):
                handle(frame)
                if let result = takeResult(id) { return result }
            case .empty:
                if let result = takeResult(id) { return result }  // cancelled meanwhile
                if nova_monotonic_ns() >= until { return nil }
                sched_yield()
            case .closed:
                return takeResult(id)
            }
        }
    }

    /// Gives the socket back to the reader thread: hands out the frames read already (nothing
    /// would wake the thread for them), rearms its wait, releases the read token.
    private func stopReading(_ runner: Runner) {
        while let frame = runner.channel.buffered() { handle(frame) }
        runner.wakeReader(true)
        runner.releaseReadToken()
    }

    /// The result left for polling call `id`, if it has arrived; removes the call.
    private func takeResult(_ id: UInt64) -> Result<ToolCallResult, any Error>? {
        state.withLock { s in
            guard case .done(let result)? = s.pending[id]?.waiter else { return nil }
            s.pending[id] = nil
            return result
        }
    }

    /// Asks the runner's instance to `refresh` (ABI 1.1); its new tools arrive as a `tools` frame.
    public func refresh() {
        guard let runner = state.withLock({ $0.runner }) else { return }
        runner.channel.send(RunnerFrame.json(["op": "refresh"]))
    }

    /// Stops the runner (the generation is retired). In-flight calls have finished by then.
    public func stop() { _ = stopRunner() }

    /// Stops the runner and waits (up to `timeoutNanos`) until it has exited: it destroys the
    /// instance and shuts the driver down first. For an orderly exit of the host, which would
    /// otherwise kill the runner (parent-death signal) before it got there.
    public func stopAndWait(timeoutNanos: Int64 = 10_000_000_000) {
        guard let pid = stopRunner() else { return }
        let deadline = nova_monotonic_ns() + timeoutNanos
        while !state.withLock({ $0.ended.contains(pid) }) && nova_monotonic_ns() < deadline { usleep(2_000) }
    }

    private func stopRunner() -> pid_t? {
        let runner = state.withLock { s -> Runner? in
            s.stopped = true
            defer { s.runner = nil }
            return s.runner
        }
        guard let runner else { return nil }
        // Closing our end makes the runner exit; the reader thread reaps it.
        shutdown(runner.channel.fd, Int32(SHUT_RDWR))
        return runner.pid
    }
}

