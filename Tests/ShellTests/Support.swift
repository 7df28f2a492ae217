import Foundation
@_exported import TestSupport
import Host
import JSON
import Testing

/// Paths, the built shell driver and the nova-sandbox helper. Anything missing FAILS the test
/// that needs it (these tests are never skipped).
enum ShellFixtures {
    /// The package root, found from this file's path.
    static let root = TestPaths.root

    /// Where `swift build` put libnova_shell.so and nova-host: `NOVA_BIN_DIR` (set by `make
    /// test`), else the directory of this test bundle when it holds them, else `.build/debug`.
    static let binDir: String = {
        if let dir = ProcessInfo.processInfo.environment["NOVA_BIN_DIR"] { return dir }
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        var dir = URL(fileURLWithPath: me).deletingLastPathComponent()
        for _ in 0..<4 {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("libnova_shell.so").path) { return dir.path }
            dir.deleteLastPathComponent()
        }
        return root + "/.build/debug"
    }()

    /// The helper: `NOVA_SANDBOX`, else the build output of `make -C Sources/Sandbox`.
    static let helperPath: String = ProcessInfo.processInfo.environment["NOVA_SANDBOX"] ?? root + "/Sources/Sandbox/build/nova-sandbox"

    static func helper() throws -> String {
        try #require(FileManager.default.isExecutableFile(atPath: helperPath),
                     "\(helperPath) is missing: build it with `make -C Sources/Sandbox` (or `make drivers`)")
        return helperPath
    }

    static func novaHost() throws -> String {
        let path = ProcessInfo.processInfo.environment["NOVA_HOST_BIN"] ?? binDir + "/nova-host"
        try #require(FileManager.default.isExecutableFile(atPath: path), "\(path) is missing: build nova-host first (swift build)")
        return path
    }

    /// A drivers directory holding only libnova_shell.so (copied from the build, mode 0644),
    /// shared by the whole test process so the library is mapped once.
    static let sharedDrivers: Result<String, FixtureError> = {
        let src = binDir + "/libnova_shell.so"
        guard FileManager.default.fileExists(atPath: src) else {
            return .failure(FixtureError("\(src) does not exist: build the drivers first (swift build, or make drivers)"))
        }
        let dir = tempDir("nova-shell-drivers")
        do {
            try FileManager.default.copyItem(atPath: src, toPath: dir + "/libnova_shell.so")
            chmod(dir + "/libnova_shell.so", 0o644)
        } catch {
            return .failure(FixtureError("cannot copy \(src): \(error)"))
        }
        return .success(dir)
    }()

    static func driversDirectory() throws -> String { try sharedDrivers.get() }

    struct FixtureError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    static func tempDir(_ label: String) -> String {
        let path = TestPaths.tempDir(label)
        chmod(path, 0o755)
        return path
    }

    /// Programs the tests run (all exist on Debian 12).
    static let programs: [String] = [
        "/bin/echo", "/usr/bin/echo", "/bin/true", "/bin/false", "/bin/sleep", "/usr/bin/yes", "/bin/ls", "/bin/cat", "/usr/bin/wc",
        "/usr/bin/env", "/bin/pwd", "/usr/bin/tee", "/bin/ln", "/usr/bin/xargs", "/usr/bin/sha256sum", "/usr/bin/id", "/bin/hostname",
        "/work/planted", "/usr/bin/printf", "/bin/mkdir",
    ]

    /// A driver configuration: the real helper, the test programs, a private work root.
    static func config(_ extra: [String: JSONValue] = [:]) throws -> JSONValue {
        var c: [String: JSONValue] = [
            "helper": .string(try helper()),
            "allowed_programs": .array(programs.map { .string($0) }),
            "work_root": .string(tempDir("nova-shell-work") + "/root"),
        ]
        for (k, v) in extra { c[k] = v }
        return .object(c)
    }
}



/// Calls `shell.exec` through the real host: registry (dlopen of libnova_shell.so, in process or
/// in a runner child), input/output schema validation, policy gate, deadlines.
struct ShellHarness {
    let registry: DriverRegistry
    let gate: any CallGate
    /// The driver configuration in use.
    let config: JSONValue

    init(config: JSONValue? = nil, gate: any CallGate = AllowAllGate(), isolation: DriverIsolation = .inprocess,
         driversDirectory: String? = nil) throws {
        let cfg = try config ?? ShellFixtures.config()
        self.config = cfg
        let dir = try driversDirectory ?? ShellFixtures.driversDirectory()
        registry = DriverRegistry(driversDirectory: dir, settings: ["shell": DriverSettings(config: cfg, isolation: isolation)],
                                  runnerCommand: isolation == .process ? [try ShellFixtures.novaHost(), "driver-runner"] : nil)
        self.gate = gate
    }

    var workRoot: String { config["work_root"]?.stringValue ?? "" }

    /// Runs `shell.exec` once with `input` (and an optional step timeout) as `principal`.
    func exec(_ input: JSONValue, timeoutMs: Int? = nil, principal: String = "tester") async throws -> Outcome {
        var step: [String: JSONValue] = ["id": "s", "call": "shell.exec", "input": input]
        if let timeoutMs { step["timeout_ms"] = .int(timeoutMs) }
        let plan = try Plan.parse(["name": "one-call", "steps": [.object(step)]])
        let record = await PlanRunner(registry: registry, gate: gate).run(plan, inputs: [:], principal: principal, runId: RunId.make())
        return Outcome(step: try #require(record.steps.first))
    }
}

/// Processes on this machine, from /proc.
enum Procs {
    struct Info: Sendable {
        let pid: Int32
        let ppid: Int32
        let state: String
        let cmdline: [String]
        let pidNamespace: String?
    }

    static func all() -> [Info] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { name -> Info? in
            guard let pid = Int32(name) else { return nil }
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2 else { return nil }
            let cmd = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            let args = cmd.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            let ns = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid")
            return Info(pid: pid, ppid: Int32(fields[1]) ?? 0, state: String(fields[0]), cmdline: args, pidNamespace: ns)
        }
    }

    /// Processes whose command line contains `marker`.
    static func matching(_ marker: String) -> [Info] { all().filter { $0.cmdline.contains { $0.contains(marker) } } }
}

/// Runs a program and captures its output.
/// Runs on a thread of its own (`OffPool`): the child may take seconds, and a cooperative thread
/// blocked in waitpid is one of the two every other test needs.
func runProcess(_ path: String, _ args: [String], environment: [String: String]? = nil, cwd: String? = nil) async throws -> (status: Int32, stdout: String, stderr: String) {
    let r = try await ProcessRunner.run(path, args, environment: environment, cwd: cwd)
    return (r.status, r.stdout, r.stderr)
}
