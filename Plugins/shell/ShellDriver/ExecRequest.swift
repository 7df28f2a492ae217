import DriverKit
import JSON

/// A checked `shell.exec` input. Nothing in it is ever interpreted by a shell: `program` is
/// executed directly and every argument reaches the program as one argv element, byte for byte.
struct ExecRequest: Sendable {
    /// Absolute, canonical, allowlisted path.
    var program: String
    var args: [String]
    var stdin: [UInt8]?
    /// Components of the working directory below the work dir (empty: the work dir itself).
    var cwd: [String]
    var timeoutMs: Int
    /// Environment entries allowed by `env_allowlist`, sorted by name.
    var env: [(String, String)]
    /// A persistent work dir's name, if the configuration allows them.
    var workdir: String?
    /// Files to read back from the work dir after the run (relative paths).
    var readFiles: [String]

    /// Where the work dir appears inside the sandbox.
    static let workdirMount = "/work"

    /// Checks `input` against the configuration. Errors are `invalid_argument` with a specific code.
    init(_ input: JSONValue, config: ShellConfig) throws {
        guard let obj = input.objectValue else { throw DriverError.invalidArgument("input must be an object") }
        let known: Set<String> = ["program", "args", "stdin", "cwd", "timeout_ms", "env", "workdir", "read_files"]
        for k in obj.keys.sorted() where !known.contains(k) { throw DriverError.invalidArgument("unknown input field '\(k)'") }

        guard let program = obj["program"]?.stringValue else { throw DriverError.invalidArgument("program must be a string") }
        if let problem = ProgramPath.problem(program) {
            let code = program.hasPrefix("/") ? "invalid_program" : "relative_program"
            throw DriverError(.invalidArgument, code: code, message: "program '\(Self.show(program))' \(problem)")
        }
        // A program planted by a sandbox (its work dir, its /tmp) is never run, allowlisted or not.
        for inside in [Self.workdirMount, "/tmp", "/dev", "/proc"] where program == inside || program.hasPrefix(inside + "/") {
            throw DriverError(.invalidArgument, code: "program_in_workdir",
                              message: "program '\(Self.show(program))' lies in the sandbox's writable or virtual space (\(inside)); programs must be host binaries")
        }
        guard config.allowedPrograms.contains(program) else {
            throw DriverError(.invalidArgument, code: "program_not_allowed",
                              message: "program '\(Self.show(program))' is not in the shell driver's allowed_programs")
        }
        self.program = program

        var args: [String] = []
        if let a = obj["args"], !a.isNull {
            guard let list = a.arrayValue else { throw DriverError.invalidArgument("args must be an array of strings") }
            for (i, v) in list.enumerated() {
                guard let s = v.stringValue else { throw DriverError.invalidArgument("args[\(i)] must be a string") }
                guard !s.utf8.contains(0) else { throw DriverError.invalidArgument("args[\(i)] contains a NUL byte") }
                args.append(s)
            }
        }
        guard args.count <= 4096, args.reduce(0, { $0 + $1.utf8.count }) <= 512 << 10 else {
            throw DriverError.invalidArgument("args: at most 4096 arguments and 512 KiB in total")
        }
        self.args = args

        if let s = obj["stdin"], !s.isNull {
            guard let text = s.stringValue else { throw DriverError.invalidArgument("stdin must be a string") }
            guard text.utf8.count <= config.maxStdinBytes else {
                throw DriverError(.invalidArgument, code: "stdin_too_large", message: "stdin is \(text.utf8.count) bytes; the limit is \(config.maxStdinBytes)")
            }
            stdin = Array(text.utf8)
        }

        cwd = []
        if let c = obj["cwd"], !c.isNull {
            guard let s = c.stringValue else { throw DriverError.invalidArgument("cwd must be a string") }
            cwd = try Self.relativeComponents(s, field: "cwd", allowAbsoluteWorkdir: true)
        }

        if let t = obj["timeout_ms"], !t.isNull {
            guard t.isNumber, let ms = t.intValue, ms >= 1 else { throw DriverError.invalidArgument("timeout_ms must be a positive integer") }
            guard ms <= config.maxTimeoutMs else {
                throw DriverError(.invalidArgument, code: "timeout_too_long", message: "timeout_ms \(ms) exceeds the driver's max_timeout_ms (\(config.maxTimeoutMs))")
            }
            timeoutMs = ms
        } else {
            timeoutMs = config.defaultTimeoutMs
        }

        var env: [(String, String)] = []
        if let e = obj["env"], !e.isNull {
            guard let eo = e.objectValue else { throw DriverError.invalidArgument("env must be an object of strings") }
            for (name, value) in eo.sorted(by: { $0.key < $1.key }) {
                guard EnvRules.isName(name) else { throw DriverError.invalidArgument("env: '\(Self.show(name))' is not a variable name") }
                guard config.envAllowed(name) else {
                    throw DriverError(.invalidArgument, code: "env_not_allowed",
                                      message: "env: \(name) is not in the shell driver's env_allowlist" + (EnvRules.alwaysRefused(name) ? " (\(EnvRules.refusedDescription))" : ""))
                }
                guard let v = value.stringValue, !v.utf8.contains(0) else { throw DriverError.invalidArgument("env.\(name) must be a string without NUL") }
                env.append((name, v))
            }
        }
        self.env = env

        if let w = obj["workdir"], !w.isNull {
            guard let name = w.stringValue, Self.isWorkdirName(name) else {
                throw DriverError.invalidArgument("workdir must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
            }
            guard config.persistentWorkdirs else {
                throw DriverError(.invalidArgument, code: "workdir_not_allowed", message: "persistent work dirs are disabled (persistent_workdirs in the shell driver's configuration)")
            }
            workdir = name
        }

        readFiles = []
        if let r = obj["read_files"], !r.isNull {
            guard let list = r.arrayValue else { throw DriverError.invalidArgument("read_files must be an array of strings") }
            guard list.count <= config.maxFiles else {
                throw DriverError.invalidArgument("read_files: at most \(config.maxFiles) files (max_files)")
            }
            for (i, v) in list.enumerated() {
                guard let s = v.stringValue else { throw DriverError.invalidArgument("read_files[\(i)] must be a string") }
                let comps = try Self.relativeComponents(s, field: "read_files[\(i)]", allowAbsoluteWorkdir: true)
                guard !comps.isEmpty else { throw DriverError.invalidArgument("read_files[\(i)] names the work dir itself") }
                readFiles.append(comps.joined(separator: "/"))
            }
        }
    }

    /// Splits a path that must stay inside the work dir: relative (`a/b`) or, when allowed,
    /// absolute below the work dir's mount point (`/work/a/b`). `..` is refused outright.
    static func relativeComponents(_ path: String, field: String, allowAbsoluteWorkdir: Bool) throws -> [String] {
        guard !path.utf8.contains(0), path.utf8.count <= 4096 else { throw DriverError.invalidArgument("\(field) is not a usable path") }
        var rest = Substring(path)
        if rest.hasPrefix("/") {
            guard allowAbsoluteWorkdir, rest == workdirMount || rest.hasPrefix(workdirMount + "/") else {
                throw DriverError(.invalidArgument, code: "path_outside_workdir", message: "\(field) '\(show(path))' must be inside the work dir (relative, or under \(workdirMount))")
            }
            rest = rest.dropFirst(workdirMount.count)
        }
        var out: [String] = []
        for c in rest.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { throw DriverError(.invalidArgument, code: "path_outside_workdir", message: "\(field) '\(show(path))' must not contain '..'") }
            out.append(String(c))
        }
        return out
    }

    static func isWorkdirName(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard (1...64).contains(b.count) else { return false }
        func alnum(_ x: UInt8) -> Bool { (x >= 0x30 && x <= 0x39) || (x >= 0x41 && x <= 0x5A) || (x >= 0x61 && x <= 0x7A) }
        return alnum(b[0]) && b.allSatisfy { alnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// A value for an error message: at most 200 characters.
    static func show(_ s: String) -> String { s.count > 200 ? String(s.prefix(200)) + "…" : s }
}
