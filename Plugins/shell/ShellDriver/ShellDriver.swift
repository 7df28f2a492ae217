import CShellSupport
import DriverKit
import JSON
#if canImport(Glibc)
import Glibc
#endif

/// `shell`: one tool, `shell.exec`, that runs one allowlisted program (absolute path, argv
/// array — never a shell, no string is interpreted) inside the `nova-sandbox` launch helper:
/// user/mount/pid/net/ipc/uts/cgroup namespaces, a read-only minimal root with a fresh work dir
/// as the only writable path, rlimits, `no_new_privs` and a seccomp deny-list.
///
/// The driver enforces the wall-clock deadline (the earlier of `timeout_ms` and the step's
/// deadline) by SIGTERM to the helper — which kills the sandbox's whole pid namespace — and
/// SIGKILL 2 s later; the helper's own `deadline_ms` is a second line. stdout and stderr are read
/// through pipes with byte caps; overflowing one kills the sandbox and marks it truncated.
/// Every helper is spawned from one long-lived thread (`SpawnThread`) so that its
/// parent-death signal only fires when the host process dies.
///
/// Where the sandbox cannot be built (no user namespaces, no seccomp) every call fails with
/// `sandbox_unavailable` — unless the configuration sets `allow_unsandboxed`, in which case the
/// program runs without namespaces or seccomp (own session, rlimits, no_new_privs, the work dir
/// as cwd, unprivileged uid when the host is root) and the output says `"sandbox": "none"`.
/// See `ShellConfig` for the configuration and docs/shell.md for the whole contract.
public struct ShellDriver: NovaDriver {
    /// The manifest: `shell.exec` with its input and output schemas.
    public static let manifest: JSONValue = [
        "name": "shell",
        "version": "1.0.0",
        "description": "Run one allowlisted program (absolute path, argument array, never a shell) in a namespace + seccomp sandbox with a fresh work dir, limits, output caps and a deadline.",
        "concurrency": "thread_safe",
        "permissions": ["network": false, "filesystem": true, "process": true],
        "tools": [[
            "name": "exec",
            "description": "Execute a program by absolute path with literal arguments inside the sandbox. Returns exit code or signal, stdout/stderr (capped, with truncated flags), duration, peak memory, and whether and why it was killed.",
            "inputSchema": inputSchema,
            "outputSchema": outputSchema,
            "annotations": ["readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": false],
            "policyInputs": ["program": "/program", "args": "/args"],
            // Run with /bin/echo in the configuration's allowed_programs.
            "examples": [
                ["input": ["program": "/bin/echo", "args": ["hello", "nova"]]],
                ["input": ["program": "/bin/no-such-program"], "error": "program_not_allowed",
                 "description": "a program outside allowed_programs is refused before anything runs"],
            ],
        ]],
    ]

    static let inputSchema: JSONValue = [
        "type": "object",
        "properties": [
            "program": ["type": "string", "minLength": 1, "maxLength": 4096,
                        "description": "Absolute path of the program; must be in the driver's allowed_programs (and the policy's shell_programs). No PATH lookup."],
            "args": ["type": "array", "items": ["type": "string"], "maxItems": 4096,
                     "description": "Arguments, each passed to the program literally as one argv element."],
            "stdin": ["type": "string", "description": "Text written to the program's standard input (default: empty, /dev/null)."],
            "cwd": ["type": "string", "description": "Working directory inside the work dir: relative, or absolute under /work. Created if missing."],
            "timeout_ms": ["type": "integer", "minimum": 1, "description": "Wall-clock limit; the step's deadline wins if earlier."],
            "env": ["type": "object", "additionalProperties": ["type": "string"],
                    "description": "Extra environment variables; names must be in the driver's env_allowlist (never PATH or LD_*)."],
            "workdir": ["type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                        "description": "A named persistent work dir (only if the driver's configuration allows it)."],
            "read_files": ["type": "array", "items": ["type": "string", "minLength": 1], "maxItems": 1024,
                           "description": "Files to return from the work dir after the run (relative paths; links are never followed)."],
        ],
        "required": ["program"],
        "additionalProperties": false,
    ]

    static let outputSchema: JSONValue = [
        "type": "object",
        "properties": [
            "exit_code": ["type": ["integer", "null"]],
            "signal": ["type": ["integer", "null"]],
            "signal_name": ["type": ["string", "null"]],
            "stdout": ["type": "string"], "stdout_encoding": ["enum": ["utf-8", "base64"]],
            "stdout_bytes": ["type": "integer"], "stdout_truncated": ["type": "boolean"],
            "stderr": ["type": "string"], "stderr_encoding": ["enum": ["utf-8", "base64"]],
            "stderr_bytes": ["type": "integer"], "stderr_truncated": ["type": "boolean"],
            "duration_ms": ["type": "number"],
            "setup_ms": ["type": ["number", "null"]],
            "user_ms": ["type": "number"], "sys_ms": ["type": "number"],
            "max_rss_kb": ["type": "integer"],
            "killed": ["type": "boolean"],
            "kill_reason": ["enum": [.null, "timeout", "cpu_limit", "output_limit", "cancelled", "memory", "signal"]],
            "memory_bound": ["enum": ["cgroup-v2", "cgroup-v1", "rlimit-only"]],
            "memory_peak_bytes": ["type": ["integer", "null"]],
            "memory_note": ["type": "string"],
            "disk_full": ["enum": [.null, "bytes", "inodes"]],
            "workdir_error": ["type": "string"],
            "cleanup_error": ["type": "string"],
            "timed_out": ["type": "boolean"],
            "sandbox": ["enum": ["namespaces", "none"]],
            "sandbox_note": ["type": "string"],
            "files": ["type": "array", "items": ["type": "object"]],
        ],
        "required": ["exit_code", "signal", "stdout", "stdout_truncated", "stderr", "stderr_truncated", "duration_ms",
                     "max_rss_kb", "killed", "kill_reason", "timed_out", "sandbox", "memory_bound", "memory_peak_bytes", "disk_full"],
    ]

    let config: ShellConfig
    let helper: Result<String, HelperNotFound>

    /// Reads the configuration and locates the helper (a missing helper fails calls, not creation,
    /// so `drivers list` still shows the tool).
    public init(configuration: JSONValue) throws {
        config = try ShellConfig(configuration)
        helper = HelperLocator.resolve(configured: config.helper, environment: ShellConfig.processEnvironment(),
                                       imagePath: HelperLocator.imagePath())
        // Work dirs of calls whose process was killed (no cleanup ran) go now.
        WorkDir.sweepStale(root: config.workRoot)
    }

    /// `shell.exec`: checks the input, prepares the work dir, runs the helper on its own I/O
    /// thread (spawned by `SpawnThread`) and turns its status records into the output.
    public func call(_ call: ToolCall) async throws -> ToolOutput {
        guard call.tool == "exec" else { throw DriverError.unknownTool(call.tool) }
        let request = try ExecRequest(call.input(), config: config)
        let start = monotonicNanos()
        var deadline = start + Int64(request.timeoutMs) * 1_000_000
        var hostDeadline = false
        if let d = call.deadlineNanos, d < deadline {
            deadline = d
            hostDeadline = true
        }
        guard deadline > start else { throw DriverError(.deadline, code: "timeout", message: "shell.exec: the step's deadline has already passed") }

        let work = request.workdir != nil ? try WorkDir.persistent(request.workdir!, config: config) : try WorkDir.fresh(config: config)
        defer { work.close() }
        try work.makeDirectories(request.cwd, owner: WorkDir.sandboxOwner(config))

        var result: JSONValue
        switch helper {
        case .success(let path):
            let mode = LaunchMode.helper(path: path, config: helperConfig(request, work: work, deadline: deadline),
                                         escalateNanos: hostDeadline ? 20_000_000 : 2_000_000_000)
            // For the input's timeout the helper's deadline_ms reports first and the host's own kill
            // is the backstop; the step's deadline is enforced at once (the host stops waiting
            // 50 ms after it).
            let raw = try await execute(mode, request, killAt: deadline + (hostDeadline ? 0 : 250_000_000))
            if let failure = setupFailure(raw) {
                guard Self.unavailableStages.contains(failure.stage) else { throw failure.error(program: request.program) }
                guard config.allowUnsandboxed else { throw failure.unavailableError() }
                let direct = try await execute(directMode(request, work: work), request, killAt: deadline)
                result = output(direct, sandboxed: false, note: "the sandbox could not be built (stage \(failure.stage): \(failure.message)); ran unsandboxed because allow_unsandboxed is set")
            } else {
                result = output(raw, sandboxed: true, note: nil)
            }
        case .failure(let notFound):
            guard config.allowUnsandboxed else {
                throw DriverError(.unsupported, code: "sandbox_unavailable",
                                  message: "shell.exec refuses to run without its sandbox: \(notFound.description). Run `nova-host doctor` to check this machine.")
            }
            let direct = try await execute(directMode(request, work: work), request, killAt: deadline)
            result = output(direct, sandboxed: false, note: "\(notFound.description); ran unsandboxed because allow_unsandboxed is set")
        }

        if result["kill_reason"]?.stringValue == "cancelled" { throw CancellationError() }
        if hostDeadline, result["kill_reason"]?.stringValue == "timeout" {
            throw DriverError(.deadline, code: "timeout",
                              message: "shell.exec: the step's deadline passed after \(result["duration_ms"]?.doubleValue.map { "\(Int($0))" } ?? "?") ms; the sandbox was killed")
        }
        if !request.readFiles.isEmpty, case .object(var o) = result {
            o["files"] = .array(request.readFiles.map { work.readBack($0, maxBytes: config.maxFileBytes) })
            result = .object(o)
        }
        // The helper has exited, and it exits only after the sandbox's pid namespace is gone
        // (its init is the namespace's pid 1 and is reaped first): nothing can still write here.
        if let problem = work.close(), case .object(var o) = result {
            o["cleanup_error"] = .string(problem)
            result = .object(o)
        }
        return .json(result)
    }

    /// Runs `mode` on its own thread; the task's cancellation stops it.
    private func execute(_ mode: LaunchMode, _ request: ExecRequest, killAt: Int64) async throws -> RawRun {
        let execution = try Execution(mode: mode, stdin: request.stdin, stdoutCap: config.maxStdoutBytes,
                                      stderrCap: config.maxStderrBytes, deadlineNanos: killAt)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<RawRun, any Error>) in
                do {
                    try startThread { c.resume(with: Result { try execution.run() }) }
                } catch {
                    c.resume(throwing: error)
                }
            }
        } onCancel: {
            execution.cancel()
        }
    }

    /// The helper's config message (Sources/Sandbox/README.md §1): NUL-terminated records.
    func helperConfig(_ r: ExecRequest, work: WorkDir, deadline: Int64) -> [UInt8] {
        var m: [UInt8] = []
        func rec(_ k: String, _ v: String) {
            m += Array(k.utf8)
            m.append(UInt8(ascii: "="))
            m += Array(v.utf8)
            m.append(0)
        }
        rec("version", "1")
        rec("program", r.program)
        rec("argv", r.program)
        for a in r.args { rec("argv", a) }
        for (k, v) in r.env { rec("env", "\(k)=\(v)") }
        rec("workdir", work.path)
        if !r.cwd.isEmpty { rec("cwd", ExecRequest.workdirMount + "/" + r.cwd.joined(separator: "/")) }
        let l = config.limits
        rec("cpu_seconds", String(l.cpuSeconds))
        rec("memory_bytes", String(l.memoryBytes))
        rec("nproc", String(l.nproc))
        rec("nofile", String(l.nofile))
        rec("fsize_bytes", String(l.fsizeBytes))
        rec("tmp_bytes", String(l.tmpBytes))
        rec("workdir_bytes", String(l.diskBytes))
        rec("workdir_inodes", String(l.diskInodes))
        rec("shm_bytes", String(l.shmBytes))
        if let m = l.memoryMaxBytes { rec("memory_max_bytes", String(m)) }
        rec("cgroup", config.cgroup)
        if let p = config.cgroupParent { rec("cgroup_parent", p) }
        rec("allow_exec_in_work", config.allowExecInWork ? "1" : "0")
        rec("deadline_ms", String(max(1, (deadline - monotonicNanos()) / 1_000_000)))
        rec("wait_teardown", config.waitTeardown ? "1" : "0")
        rec("parent_pid", String(getpid()))
        if let (uid, gid) = WorkDir.sandboxOwner(config) {
            rec("host_uid", String(uid))
            rec("host_gid", String(gid))
        }
        return m
    }

    /// The weaker mode's launch: the program itself, in the work dir, scrubbed environment.
    func directMode(_ r: ExecRequest, work: WorkDir) -> LaunchMode {
        let l = config.limits
        let env = ["PATH=/usr/local/bin:/usr/bin:/bin"] + r.env.map { "\($0.0)=\($0.1)" }
        let owner = WorkDir.sandboxOwner(config)
        return .direct(program: r.program, argv: [r.program] + r.args, env: env,
                       cwd: work.path + (r.cwd.isEmpty ? "" : "/" + r.cwd.joined(separator: "/")),
                       limits: [Int64(l.cpuSeconds), Int64(l.memoryBytes), Int64(l.nproc), Int64(l.nofile), Int64(l.fsizeBytes)],
                       uid: owner.map { Int64($0.0) } ?? -1, gid: owner.map { Int64($0.1) } ?? -1)
    }

    /// Setup stages that mean "this machine cannot build the sandbox" (not "this call is wrong").
    static let unavailableStages: Set<String> = ["userns", "unshare", "idmap", "seccomp"]

    /// A setup failure the helper reported (no program ran).
    struct SetupFailure {
        var stage: String
        var errno: Int
        var errorName: String
        var message: String

        func error(program: String) -> DriverError {
            let details: [String: JSONValue] = ["stage": .string(stage), "errno": .int(errno), "error": .string(errorName)]
            if stage == "exec" {
                let code = errorName == "ENOENT" || errorName == "ENOTDIR" ? "program_not_found" : "exec_failed"
                return DriverError.tool(code, "cannot execute \(program) inside the sandbox: \(message)", details: details)
            }
            return DriverError.tool("sandbox_setup_failed", "the sandbox could not be set up (stage \(stage)): \(message)", details: details)
        }

        func unavailableError() -> DriverError {
            DriverError(.unsupported, code: "sandbox_unavailable",
                        message: "shell.exec refuses to run: the sandbox cannot be built on this machine (stage \(stage): \(message)). Run `nova-host doctor` to see what to enable; setting \"allow_unsandboxed\": true in the shell driver's configuration runs programs without it (recorded as \"sandbox\": \"none\").",
                        details: ["stage": .string(stage), "errno": .int(errno), "error": .string(errorName)])
        }
    }

    /// The helper's setup failure, if it reported one (or died before reporting anything).
    func setupFailure(_ raw: RawRun) -> SetupFailure? {
        guard let first = raw.status.first else {
            if raw.killReason != nil { return nil }  // killed before it said anything: reported as killed
            return SetupFailure(stage: "internal", errno: 0, errorName: "",
                                message: "the helper ended without a status record (\(Self.describe(waitStatus: raw.waitStatus)))")
        }
        guard first["errno"] != nil, first["stage"]?.stringValue != "exit" else { return nil }
        return SetupFailure(stage: first["stage"]?.stringValue ?? "internal", errno: first["errno"]?.intValue ?? 0,
                            errorName: first["error"]?.stringValue ?? "", message: first["message"]?.stringValue ?? "")
    }

    /// The tool's output object.
    func output(_ raw: RawRun, sandboxed: Bool, note: String?) -> JSONValue {
        var exitCode: Int? = nil, signal: Int? = nil
        var helperTimeout: String? = nil
        var setupMs: Double? = nil
        var maxRss = Int(raw.maxRssKb)
        var userMs = Double(raw.userMicros) / 1000, sysMs = Double(raw.sysMicros) / 1000
        var incomplete = false
        var resources = ResourceReport()
        if sandboxed {
            setupMs = raw.status.first { $0["stage"]?.stringValue == "exec" }?["setup_ms"]?.doubleValue
            if let exit = raw.status.last(where: { $0["stage"]?.stringValue == "exit" }) {
                exitCode = exit["exit_code"]?.intValue
                signal = exit["signal"]?.intValue
                helperTimeout = exit["timeout"]?.stringValue
                maxRss = exit["max_rss_kb"]?.intValue ?? 0
                userMs = exit["user_ms"]?.doubleValue ?? 0
                sysMs = exit["sys_ms"]?.doubleValue ?? 0
                incomplete = exit["incomplete"]?.boolValue ?? false
                resources = ResourceReport(exit)
            } else {
                // No final record: the helper itself was killed (escalation). The program died with it.
                signal = Int(SIGKILL)
                incomplete = true
            }
        } else {
            let st = raw.waitStatus
            if st & 0x7F == 0 { exitCode = Int((st >> 8) & 0xFF) } else { signal = Int(st & 0x7F) }
        }
        var reason: String? = nil
        if signal != nil || helperTimeout != nil {
            if let k = raw.killReason { reason = k.rawValue }
            else if resources.killedByMemory { reason = "memory" }
            else if helperTimeout == "wall" { reason = "timeout" }
            else if helperTimeout == "cpu" || signal == Int(SIGXCPU) { reason = "cpu_limit" }
            else { reason = "signal" }
        } else if raw.killReason == .cancelled {
            reason = "cancelled"
        }
        let (outText, outEnc) = OutputText.encode(raw.stdout.bytes, truncated: raw.stdout.truncated)
        let (errText, errEnc) = OutputText.encode(raw.stderr.bytes, truncated: raw.stderr.truncated)
        var o: [String: JSONValue] = [
            "exit_code": exitCode.map { .int($0) } ?? .null,
            "signal": signal.map { .int($0) } ?? .null,
            "signal_name": signal.map { .string(Self.signalName($0)) } ?? .null,
            "stdout": .string(outText), "stdout_encoding": .string(outEnc),
            "stdout_bytes": .int(raw.stdout.total), "stdout_truncated": .bool(raw.stdout.truncated),
            "stderr": .string(errText), "stderr_encoding": .string(errEnc),
            "stderr_bytes": .int(raw.stderr.total), "stderr_truncated": .bool(raw.stderr.truncated),
            "duration_ms": .double(Double(max(0, raw.endNanos - raw.startNanos)) / 1e6),
            "setup_ms": setupMs.map { .double($0) } ?? .null,
            "user_ms": .double(userMs), "sys_ms": .double(sysMs),
            "max_rss_kb": .int(maxRss),
            "killed": .bool(signal != nil),
            "kill_reason": reason.map { .string($0) } ?? .null,
            "timed_out": .bool(reason == "timeout"),
            "sandbox": sandboxed ? "namespaces" : "none",
        ]
        if let note { o["sandbox_note"] = .string(note) }
        if incomplete { o["incomplete"] = true }
        resources.add(to: &o)
        return .object(o)
    }

    static func signalName(_ s: Int) -> String {
        let names = [1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
                     9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
                     24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS"]
        return names[s] ?? "SIG\(s)"
    }

    static func describe(waitStatus st: Int32) -> String {
        st & 0x7F == 0 ? "exit status \((st >> 8) & 0xFF)" : "killed by \(signalName(Int(st & 0x7F)))"
    }
}

/// What the helper's exit record says about memory and the work dir (Sources/Sandbox/README.md
/// §2): which bound held memory, the cgroup's peak, a cgroup OOM kill, a full work dir, a failed
/// copy back. Every output carries `memory_bound`; without a cgroup `memory_note` says what that
/// means.
struct ResourceReport {
    var memoryBound = "rlimit-only"
    var memoryPeakBytes: Int?
    var killedByMemory = false
    var memfdDenied = false
    var sysvShm: String?
    var diskFull: String?
    var workdirError: String?

    init() {}

    init(_ exit: JSONValue) {
        memoryBound = exit["memory_bound"]?.stringValue ?? "rlimit-only"
        memoryPeakBytes = exit["memory_peak_bytes"]?.intValue
        killedByMemory = exit["killed"]?.stringValue == "memory"
        memfdDenied = exit["memfd"]?.stringValue == "denied"
        sysvShm = exit["sysv_shm"]?.stringValue
        diskFull = exit["disk_full"]?.stringValue
        workdirError = exit["workdir_error"]?.stringValue
    }

    func add(to o: inout [String: JSONValue]) {
        o["memory_bound"] = .string(memoryBound)
        o["memory_peak_bytes"] = memoryPeakBytes.map { .int($0) } ?? .null
        o["disk_full"] = diskFull.map { .string($0) } ?? .null
        if let workdirError { o["workdir_error"] = .string(workdirError) }
        if memoryBound == "rlimit-only" {
            var note = "no cgroup: memory is bounded per process by RLIMIT_AS only (max_rss_kb is the largest process)"
            if memfdDenied { note += "; memfd_create is refused" }
            if sysvShm == "denied" { note += "; SysV shmget is refused" } else if sysvShm == "limited" { note += "; SysV shm is limited to shm_bytes" }
            o["memory_note"] = .string(note)
        }
    }
}

/// The driver's ABI entry point (`nova_driver_init`), filled in by DriverKit.
@_cdecl("nova_driver_init")
public func novaDriverInit(_ host: UnsafeRawPointer?, _ table: UnsafeMutableRawPointer?) -> Int32 {
    DriverExport.initialize(ShellDriver.self, host: host, table: table)
}
