import CShellSupport
import DriverKit
import JSON
#if canImport(Glibc)
import Glibc
#endif

/// Resource limits applied to every run (the helper's rlimits, see Sources/Sandbox/README.md).
public struct ShellLimits: Sendable, Equatable {
    /// RLIMIT_CPU soft limit in seconds (SIGXCPU, then SIGKILL one second later).
    public var cpuSeconds: Int = 10
    /// RLIMIT_AS in bytes (per process).
    public var memoryBytes: Int = 512 << 20
    /// RLIMIT_NPROC, counted per sandbox (its init included).
    public var nproc: Int = 64
    /// RLIMIT_NOFILE.
    public var nofile: Int = 256
    /// RLIMIT_FSIZE in bytes (per file).
    public var fsizeBytes: Int = 64 << 20
    /// Size of the tmpfs `/tmp` inside the sandbox.
    public var tmpBytes: Int = 64 << 20
    /// Size of the work dir's tmpfs (`/work`): writing past it fails with ENOSPC, and the host
    /// receives at most this much back.
    public var diskBytes: Int = 256 << 20
    /// Inodes (files, directories, links) of the work dir's tmpfs.
    public var diskInodes: Int = 16_384
    /// SysV shared memory of the sandbox's ipc namespace (shmmax/shmall), where it can be set.
    public var shmBytes: Int = 32 << 20
    /// The cgroup's memory limit for the whole sandbox (processes, shmem, `/tmp`, `/work`);
    /// nil: `memoryBytes + tmpBytes + diskBytes`.
    public var memoryMaxBytes: Int? = nil

    /// The defaults above.
    public init() {}
}

/// The `shell` driver's instance configuration (`configs/drivers.json` → `drivers.shell.config`).
///
/// | key | default | meaning |
/// |---|---|---|
/// | `helper` | resolved (see `HelperLocator`) | absolute path of `nova-sandbox` |
/// | `allowed_programs` | `[]` | absolute paths `shell.exec` may run; empty = nothing runs |
/// | `env_allowlist` | `["LANG","LC_ALL","TZ"]` | names `env` may set (`NAME` or `PREFIX*`; `*` alone is refused); never `PATH`, `LD_*`, `GCONV_PATH`, `LOCPATH`, `GLIBC_TUNABLES`, `BASH_ENV` and similar hooks |
/// | `default_timeout_ms` / `max_timeout_ms` | 10000 / 60000 | when the input has no `timeout_ms`; its cap |
/// | `max_stdout_bytes` / `max_stderr_bytes` | 1 MiB / 256 KiB | output caps (overflow kills the sandbox) |
/// | `max_stdin_bytes` | 1 MiB | largest `stdin` |
/// | `max_file_bytes` / `max_files` | 1 MiB / 16 | `read_files` caps |
/// | `limits` | see `ShellLimits` | `cpu_seconds`, `memory_bytes`, `nproc`, `nofile`, `fsize_bytes`, `tmp_bytes`, `disk_bytes`, `disk_inodes`, `shm_bytes`, `memory_max_bytes` |
/// | `cgroup` | `auto` | `auto`: a cgroup per sandbox when the host can create one; `required`: refuse to run without; `off` |
/// | `cgroup_parent` | none | a delegated cgroup v2 directory (memory and pids in its `cgroup.subtree_control`, no processes) to create the sandboxes' cgroups in |
/// | `allow_exec_in_work` | `false` | let programs written to `/work` or `/tmp` execute (both are `noexec` otherwise) |
/// | `work_root` | `$TMPDIR/nova-shell` or `/tmp/nova-shell` | where work dirs are created |
/// | `persistent_workdirs` | `false` | allow `workdir: NAME` (kept under `work_root/persistent/`) |
/// | `sandbox_uid` / `sandbox_gid` | 2000000000 | host ids the sandbox maps to when the host runs as root (dedicated: not the shared 65534) |
/// | `wait_teardown` | `true` | the helper waits until the sandbox's init is gone before it reports |
/// | `allow_unsandboxed` | `false` | where namespaces/seccomp are unavailable, run the program without the sandbox (`"sandbox": "none"` in the output) instead of refusing |
public struct ShellConfig: Sendable {
    /// The helper given in the configuration (nil: resolved).
    public var helper: String?
    /// Programs `shell.exec` may run (absolute, canonical paths).
    public var allowedPrograms: Set<String> = []
    /// Environment names the input may set (`NAME` or `PREFIX*`).
    public var envAllowlist: [String] = ["LANG", "LC_ALL", "TZ"]
    /// Timeout when the input gives none, and the largest allowed.
    public var defaultTimeoutMs = 10_000
    public var maxTimeoutMs = 60_000
    /// Output caps.
    public var maxStdoutBytes = 1 << 20
    public var maxStderrBytes = 256 << 10
    /// Largest `stdin`.
    public var maxStdinBytes = 1 << 20
    /// `read_files` caps.
    public var maxFileBytes = 1 << 20
    public var maxFiles = 16
    /// rlimits.
    public var limits = ShellLimits()
    /// Parent of the per-call work dirs.
    public var workRoot: String
    /// Whether `workdir: NAME` is allowed.
    public var persistentWorkdirs = false
    /// Host ids of the sandbox when the host runs as root: a dedicated id no other process
    /// uses (not `nobody`), so no host process can reach a running sandbox's files.
    public var sandboxUid: UInt32 = 2_000_000_000
    public var sandboxGid: UInt32 = 2_000_000_000
    /// `auto`, `required` or `off`: the per-sandbox cgroup (memory and pids bound).
    public var cgroup = "auto"
    /// A delegated cgroup v2 directory for the sandboxes' cgroups (nil: next to the host's own).
    public var cgroupParent: String?
    /// Programs in `/work` and `/tmp` may execute.
    public var allowExecInWork = false
    /// The helper's `wait_teardown`.
    public var waitTeardown = true
    /// Run without the sandbox where it cannot be built (recorded in the output).
    public var allowUnsandboxed = false

    static let known: Set<String> = [
        "helper", "allowed_programs", "env_allowlist", "default_timeout_ms", "max_timeout_ms", "max_stdout_bytes",
        "max_stderr_bytes", "max_stdin_bytes", "max_file_bytes", "max_files", "limits", "work_root", "persistent_workdirs",
        "sandbox_uid", "sandbox_gid", "wait_teardown", "allow_unsandboxed", "cgroup", "cgroup_parent", "allow_exec_in_work",
    ]

    /// Reads and checks a configuration object (unknown keys are refused).
    public init(_ json: JSONValue, environment: [String: String] = ShellConfig.processEnvironment()) throws {
        guard let obj = json.objectValue else { throw DriverError.invalidArgument("shell configuration must be a JSON object") }
        for key in obj.keys.sorted() where !Self.known.contains(key) {
            throw DriverError.invalidArgument("shell configuration: unknown key '\(key)' (known: \(Self.known.sorted().joined(separator: ", ")))")
        }
        let tmp = environment["TMPDIR"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        workRoot = (tmp.hasSuffix("/") ? String(tmp.dropLast()) : tmp) + "/nova-shell"

        func int(_ key: String, _ def: Int, _ range: ClosedRange<Int>, in o: [String: JSONValue] = obj, prefix: String = "") throws -> Int {
            guard let v = o[key], !v.isNull else { return def }
            guard v.isNumber, let i = v.intValue, range.contains(i) else {
                throw DriverError.invalidArgument("shell configuration: \(prefix)\(key) must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return i
        }
        func bool(_ key: String, _ def: Bool) throws -> Bool {
            guard let v = obj[key], !v.isNull else { return def }
            guard let b = v.boolValue else { throw DriverError.invalidArgument("shell configuration: \(key) must be true or false") }
            return b
        }
        func strings(_ key: String) throws -> [String]? {
            guard let v = obj[key], !v.isNull else { return nil }
            guard let a = v.arrayValue, a.allSatisfy({ $0.stringValue != nil }) else {
                throw DriverError.invalidArgument("shell configuration: \(key) must be an array of strings")
            }
            return a.compactMap(\.stringValue)
        }

        if let h = obj["helper"], !h.isNull {
            guard let s = h.stringValue, s.hasPrefix("/") else { throw DriverError.invalidArgument("shell configuration: helper must be an absolute path") }
            helper = s
        }
        for p in try strings("allowed_programs") ?? [] {
            if let problem = ProgramPath.problem(p) {
                throw DriverError.invalidArgument("shell configuration: allowed_programs: '\(p)' \(problem)")
            }
            allowedPrograms.insert(p)
        }
        if let names = try strings("env_allowlist") {
            for n in names {
                let base = n.hasSuffix("*") ? String(n.dropLast()) : n
                guard n != "*" else {
                    throw DriverError.invalidArgument("shell configuration: env_allowlist: '*' would let every call set any variable; list the names (or NAME_PREFIX*) programs need")
                }
                guard !base.isEmpty, base.utf8.allSatisfy(EnvRules.isNameByte) else {
                    throw DriverError.invalidArgument("shell configuration: env_allowlist: '\(n)' is not NAME or PREFIX*")
                }
                if !n.hasSuffix("*"), EnvRules.alwaysRefused(n) {
                    throw DriverError.invalidArgument("shell configuration: env_allowlist: '\(n)' can never be set (\(EnvRules.refusedDescription))")
                }
            }
            envAllowlist = names
        }
        defaultTimeoutMs = try int("default_timeout_ms", defaultTimeoutMs, 1...86_400_000)
        maxTimeoutMs = try int("max_timeout_ms", max(maxTimeoutMs, defaultTimeoutMs), 1...86_400_000)
        // Only a max given: the default follows it down.
        if obj["default_timeout_ms"] == nil || obj["default_timeout_ms"]!.isNull { defaultTimeoutMs = min(defaultTimeoutMs, maxTimeoutMs) }
        guard defaultTimeoutMs <= maxTimeoutMs else {
            throw DriverError.invalidArgument("shell configuration: default_timeout_ms must not exceed max_timeout_ms")
        }
        maxStdoutBytes = try int("max_stdout_bytes", maxStdoutBytes, 0...(1 << 30))
        maxStderrBytes = try int("max_stderr_bytes", maxStderrBytes, 0...(1 << 30))
        maxStdinBytes = try int("max_stdin_bytes", maxStdinBytes, 0...(1 << 30))
        maxFileBytes = try int("max_file_bytes", maxFileBytes, 0...(1 << 30))
        maxFiles = try int("max_files", maxFiles, 0...1024)
        if let l = obj["limits"], !l.isNull {
            guard let lo = l.objectValue else { throw DriverError.invalidArgument("shell configuration: limits must be an object") }
            let knownLimits: Set<String> = ["cpu_seconds", "memory_bytes", "nproc", "nofile", "fsize_bytes", "tmp_bytes",
                                            "disk_bytes", "disk_inodes", "shm_bytes", "memory_max_bytes"]
            for k in lo.keys.sorted() where !knownLimits.contains(k) {
                throw DriverError.invalidArgument("shell configuration: limits: unknown key '\(k)' (known: \(knownLimits.sorted().joined(separator: ", ")))")
            }
            limits.cpuSeconds = try int("cpu_seconds", limits.cpuSeconds, 1...86_400, in: lo, prefix: "limits.")
            limits.memoryBytes = try int("memory_bytes", limits.memoryBytes, (16 << 20)...(1 << 40), in: lo, prefix: "limits.")
            limits.nproc = try int("nproc", limits.nproc, 2...65_536, in: lo, prefix: "limits.")
            limits.nofile = try int("nofile", limits.nofile, 16...1_048_576, in: lo, prefix: "limits.")
            limits.fsizeBytes = try int("fsize_bytes", limits.fsizeBytes, 0...(1 << 40), in: lo, prefix: "limits.")
            limits.tmpBytes = try int("tmp_bytes", limits.tmpBytes, (1 << 20)...(1 << 36), in: lo, prefix: "limits.")
            limits.diskBytes = try int("disk_bytes", limits.diskBytes, (1 << 20)...(1 << 40), in: lo, prefix: "limits.")
            limits.diskInodes = try int("disk_inodes", limits.diskInodes, 64...(1 << 30), in: lo, prefix: "limits.")
            limits.shmBytes = try int("shm_bytes", limits.shmBytes, 0...(1 << 40), in: lo, prefix: "limits.")
            if let m = lo["memory_max_bytes"], !m.isNull {
                limits.memoryMaxBytes = try int("memory_max_bytes", 0, (16 << 20)...(1 << 42), in: lo, prefix: "limits.")
            }
        }
        if let w = obj["work_root"], !w.isNull {
            guard let s = w.stringValue, s.hasPrefix("/"), ProgramPath.problem(s) == nil else {
                throw DriverError.invalidArgument("shell configuration: work_root must be an absolute, canonical path")
            }
            workRoot = s
        }
        persistentWorkdirs = try bool("persistent_workdirs", false)
        sandboxUid = UInt32(try int("sandbox_uid", Int(sandboxUid), 1...4_294_967_294))
        sandboxGid = UInt32(try int("sandbox_gid", Int(sandboxGid), 1...4_294_967_294))
        waitTeardown = try bool("wait_teardown", true)
        allowUnsandboxed = try bool("allow_unsandboxed", false)
        allowExecInWork = try bool("allow_exec_in_work", false)
        if let c = obj["cgroup"], !c.isNull {
            guard let s = c.stringValue, ["auto", "required", "off"].contains(s) else {
                throw DriverError.invalidArgument("shell configuration: cgroup must be \"auto\", \"required\" or \"off\"")
            }
            cgroup = s
        }
        if let p = obj["cgroup_parent"], !p.isNull {
            guard let s = p.stringValue, s.hasPrefix("/"), ProgramPath.problem(s) == nil else {
                throw DriverError.invalidArgument("shell configuration: cgroup_parent must be an absolute, canonical path")
            }
            cgroupParent = s
        }
    }

    /// The process environment as a dictionary.
    public static func processEnvironment() -> [String: String] {
        var out: [String: String] = [:]
        var e = environ
        while let entry = e.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            e += 1
        }
        return out
    }

    /// Whether the input may set the environment variable `name`.
    func envAllowed(_ name: String) -> Bool {
        if EnvRules.alwaysRefused(name) { return false }
        return envAllowlist.contains { $0.hasSuffix("*") ? name.hasPrefix($0.dropLast()) : $0 == name }
    }
}

/// Rules for environment names.
enum EnvRules {
    static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x5F
    }

    /// A valid name: `[A-Za-z_][A-Za-z0-9_]*`.
    static func isName(_ s: String) -> Bool {
        guard let first = s.utf8.first, !(first >= 0x30 && first <= 0x39) else { return false }
        return s.utf8.allSatisfy(isNameByte)
    }

    /// Never settable, whatever the allowlist says (the helper refuses them again): `PATH`
    /// (fixed), the dynamic loader's `LD_*`, and variables that make libc or a shell load code
    /// or data from a path the caller picks.
    static let refusedNames: Set<String> = ["PATH", "GCONV_PATH", "LOCPATH", "BASH_ENV", "ENV", "GLIBC_TUNABLES", "NLSPATH",
                                            "HOSTALIASES", "RESOLV_HOST_CONF", "MALLOC_TRACE", "LOCALDOMAIN", "SHELLOPTS", "BASHOPTS", "PS4"]
    static let refusedDescription = "PATH, LD_*, GCONV_PATH, LOCPATH, GLIBC_TUNABLES, BASH_ENV, ENV and other loader, libc and shell hooks are never passed"
    static func alwaysRefused(_ name: String) -> Bool { refusedNames.contains(name) || name.hasPrefix("LD_") }
}

/// Checks on absolute program paths.
enum ProgramPath {
    /// Why `path` is not an absolute, canonical path (no `.`/`..`/empty components, no NUL,
    /// no trailing slash), or nil when it is.
    static func problem(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "must be an absolute path (relative names and PATH lookups are refused)" }
        guard path.utf8.count <= 4096 else { return "is too long" }
        guard !path.utf8.contains(0) else { return "contains a NUL byte" }
        let parts = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        guard !parts.isEmpty, path != "/" else { return "names no file" }
        for p in parts {
            if p.isEmpty { return "must be canonical (no '//' and no trailing '/')" }
            if p.elementsEqual(".".utf8) || p.elementsEqual("..".utf8) { return "must be canonical (no '.' or '..')" }
        }
        return nil
    }
}

/// Finds the `nova-sandbox` helper.
///
/// Order: the configuration's `helper`; `$NOVA_SANDBOX`; next to the driver library — the
/// drivers directory itself (`<drivers>/nova-sandbox`), then `Sources/Sandbox/build/nova-sandbox`
/// under the drivers directory's parent and its next two ancestors (a checkout's `drivers/`, or
/// `.build/<configuration>/`); finally each directory of the host process's `PATH`. The library's
/// own location comes from `dladdr` (a hot-reload copy in `<drivers>/.gen/` counts as `<drivers>`).
public enum HelperLocator {
    /// The helper's path, or the list of places that were looked at.
    public static func resolve(configured: String?, environment: [String: String], imagePath: String?) -> Result<String, HelperNotFound> {
        var tried: [String] = []
        func usable(_ p: String) -> Bool {
            tried.append(p)
            var st = stat()
            return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(p, X_OK) == 0
        }
        if let c = configured {
            return usable(c) ? .success(c) : .failure(HelperNotFound(tried: tried, source: "configuration key helper"))
        }
        if let e = environment["NOVA_SANDBOX"], !e.isEmpty {
            return usable(e) ? .success(e) : .failure(HelperNotFound(tried: tried, source: "NOVA_SANDBOX"))
        }
        for c in candidates(imagePath: imagePath) where usable(c) { return .success(c) }
        for dir in (environment["PATH"] ?? "").split(separator: ":") where dir.hasPrefix("/") {
            if usable(String(dir) + "/nova-sandbox") { return .success(String(dir) + "/nova-sandbox") }
        }
        return .failure(HelperNotFound(tried: tried, source: nil))
    }

    /// Candidates derived from the driver library's path.
    static func candidates(imagePath: String?) -> [String] {
        guard var image = imagePath, !image.isEmpty else { return [] }
        if !image.hasPrefix("/") {
            // dlopen was given a relative path (e.g. `drivers/.gen/<sha>.so`): relative to the cwd.
            guard let raw = getcwd(nil, 0) else { return [] }
            let cwd = String(cString: raw)
            free(raw)
            image = (cwd == "/" ? "" : cwd) + "/" + (image.hasPrefix("./") ? String(image.dropFirst(2)) : image)
        }
        var dir = parent(image)
        if dir.hasSuffix("/.gen") { dir = parent(dir) }
        var out = [dir + "/nova-sandbox"]
        var up = parent(dir)
        for _ in 0..<3 {
            out.append((up == "/" ? "" : up) + "/Sources/Sandbox/build/nova-sandbox")
            if up == "/" { break }
            up = parent(up)
        }
        return out
    }

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The path of the loaded driver library (dladdr), if known.
    public static func imagePath() -> String? { nova_shell_image_path().map { String(cString: $0) } }
}

/// Where the helper was looked for, when it was not found.
public struct HelperNotFound: Error, Sendable, CustomStringConvertible {
    /// Paths checked, in order.
    public var tried: [String]
    /// The single source that was authoritative (configuration or environment), if any.
    public var source: String?
    /// What to tell the caller: where it looked and how to provide the helper.
    public var description: String {
        let places = tried.isEmpty ? "nowhere (no candidates)" : tried.joined(separator: ", ")
        if let source { return "the nova-sandbox helper named by \(source) is not an executable file (\(places))" }
        return "the nova-sandbox helper was not found (looked at: \(places)). Build it with `make -C Sources/Sandbox`, or set \"helper\" in the shell driver's configuration or NOVA_SANDBOX"
    }
}
