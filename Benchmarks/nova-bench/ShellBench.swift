import CHostSupport
import DriverABI
import Foundation
import Host
import JSON
#if canImport(Glibc)
import Glibc
#endif

/// `shell.exec` of `/bin/true` end to end through nova-host (plan step → policy gate → schema
/// validation → ABI → shell driver → fresh work dir → nova-sandbox → status records → output)
/// next to the same program launched raw, ALTERNATELY in one loop (one of each per round):
///
///   true            posix_spawn of /bin/true, for reference
///   nova-sandbox    posix_spawn of the helper with the driver's kind of config (fixed work dir,
///                   status records on a pipe that is read to EOF)
///   bwrap           bubblewrap with similar minimal binds, 6 namespaces, --clearenv, read-only root
///                   (Benchmarks/sandbox/bench.sh's `bwrap-min`)
///   shell.exec      through PlanRunner with a PolicyEngine, the driver in process
///
/// Prints median, min and p90 per command and the ratios. The helper-vs-bwrap figure with more
/// variants (seccomp in bwrap, `--ro-bind / /`) is Benchmarks/sandbox/bench.sh.
enum ShellBench {
    struct Stats {
        var median: Double
        var min: Double
        var p90: Double
        init(_ xs: [Double]) {
            let s = xs.sorted()
            median = Measure.median(s)
            min = s.first ?? 0
            p90 = s[Swift.min(s.count - 1, s.count * 9 / 10)]
        }
    }

    static func findFirst(_ candidates: [String], _ file: String) -> String? {
        candidates.first { FileManager.default.fileExists(atPath: "\($0)/\(file)") }
    }

    static func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let rounds = Int(env["NOVA_BENCH_SHELL_ROUNDS"] ?? "") ?? 200
        var dirs = [".build/release", ".build-shell/release", "drivers", ".build/debug", ".build-shell/debug"]
        if let d = env["NOVA_BIN_DIR"] { dirs.insert(d, at: 0) }
        guard let driversDir = findFirst(dirs, "libnova_shell.so") else {
            print("  libnova_shell.so not found (swift build -c release, or make drivers)")
            return
        }
        let helper = env["NOVA_SANDBOX"] ?? FileManager.default.currentDirectoryPath + "/Sources/Sandbox/build/nova-sandbox"
        guard FileManager.default.isExecutableFile(atPath: helper) else {
            print("  \(helper) not found (make -C Sources/Sandbox)")
            return
        }
        let bwrapPath = ["/usr/bin/bwrap", "/bin/bwrap"].first { FileManager.default.isExecutableFile(atPath: $0) }

        let tmp = NSTemporaryDirectory() + "nova-shell-bench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: tmp + "/work", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        chmod(tmp, 0o755)
        if geteuid() == 0 { chown(tmp + "/work", 65534, 65534) }

        // The driver, through the run engine and a policy.
        let registry = DriverRegistry(driversDirectory: driversDir, driverConfig: [
            "shell": ["helper": .string(helper), "allowed_programs": ["/bin/true"], "work_root": .string(tmp + "/root")],
        ])
        let policy = try PolicyProfile(json: [
            "principals": ["bench": "user"],
            "rules": [["id": "true", "effect": "allow", "roles": ["user"], "tools": ["shell.exec"],
                       "conditions": ["shell_programs": ["/bin/true"]]]],
        ])
        let runner = PlanRunner(registry: registry, gate: PolicyEngine(profile: policy))
        let plan = try Plan.parse(["name": "true", "steps": [["id": "t", "call": "shell.exec",
                                                              "input": ["program": "/bin/true", "timeout_ms": 10000]]]])
        func viaHost() async throws {
            let r = await runner.run(plan, inputs: [:], principal: "bench", runId: RunId.make())
            guard r.status == .succeeded, r.steps.first?.output?["exit_code"] == 0, r.steps.first?.output?["sandbox"] == "namespaces" else {
                throw BenchError("shell.exec /bin/true failed: \(r.steps.first?.reason ?? "-") \(r.steps.first?.attempts.last?.error?.message ?? "")")
            }
        }

        // The raw helper: the records the driver sends (minus per-call parts), status read to EOF.
        var cfg: [UInt8] = []
        func rec(_ k: String, _ v: String) { cfg += Array("\(k)=\(v)".utf8); cfg.append(0) }
        rec("version", "1"); rec("program", "/bin/true"); rec("argv", "/bin/true"); rec("workdir", tmp + "/work")
        rec("cpu_seconds", "10"); rec("memory_bytes", "536870912"); rec("nproc", "64"); rec("nofile", "256")
        rec("deadline_ms", "10000"); rec("wait_teardown", "1")
        let rawHelper = { try Spawn.run(helper, ["--config-fd", "3", "--status-fd", "4"], config: cfg) }

        var bwrap: [String] = []
        if let bwrapPath {
            bwrap = [bwrapPath, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--ro-bind", "/usr", "/usr"]
            for d in ["bin", "sbin", "lib", "lib64", "lib32", "libx32"] {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/" + d) {
                    bwrap += ["--symlink", target, "/" + d]
                } else if DoctorLike.isDirectory("/" + d) {
                    bwrap += ["--ro-bind", "/" + d, "/" + d]
                }
            }
            bwrap += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind", tmp + "/work", "/work", "--chdir", "/work",
                      "--hostname", "nova-sandbox", "--remount-ro", "/", "/bin/true"]
        }

        // Sanity: each works once.
        try await viaHost()
        try rawHelper()
        try Spawn.run("/bin/true", [], config: nil)
        if !bwrap.isEmpty { try Spawn.run(bwrap[0], Array(bwrap.dropFirst()), config: nil) }

        var samples: [String: [Double]] = [:]
        func timed(_ name: String, _ body: () async throws -> Void) async throws {
            let t0 = nova_monotonic_ns()
            try await body()
            samples[name, default: []].append(Double(nova_monotonic_ns() - t0))
        }
        let warmup = 20
        for round in 0..<(rounds + warmup) {
            let keep = round >= warmup
            func one(_ name: String, _ body: () async throws -> Void) async throws {
                if keep { try await timed(name, body) } else { try await body() }
            }
            try await one("true") { try Spawn.run("/bin/true", [], config: nil) }
            try await one("nova-sandbox") { try rawHelper() }
            if !bwrap.isEmpty { try await one("bwrap") { try Spawn.run(bwrap[0], Array(bwrap.dropFirst()), config: nil) } }
            try await one("shell.exec") { try await viaHost() }
        }

        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        print("  \(rounds) alternating rounds (\(warmup) warm-up), uid \(geteuid()), load \(load); driver from \(driversDir)")
        var stats: [String: Stats] = [:]
        for name in ["true", "nova-sandbox", "bwrap", "shell.exec"] {
            guard let xs = samples[name] else { continue }
            let s = Stats(xs)
            stats[name] = s
            let label = name.padding(toLength: 14, withPad: " ", startingAt: 0)
            print("    \(label) median \(ms(s.median))  min \(ms(s.min))  p90 \(ms(s.p90))")
        }
        if let h = stats["shell.exec"], let n = stats["nova-sandbox"] {
            print(String(format: "    shell.exec / nova-sandbox: median ×%.2f (+%@), min ×%.2f", h.median / n.median, ms(h.median - n.median), h.min / n.min))
        }
        if let h = stats["shell.exec"], let b = stats["bwrap"] {
            print(String(format: "    shell.exec / bwrap:        median ×%.2f, min ×%.2f", h.median / b.median, h.min / b.min))
        }
        if let n = stats["nova-sandbox"], let b = stats["bwrap"] {
            print(String(format: "    nova-sandbox / bwrap:      median ×%.2f, min ×%.2f (goal ≤ 1.0; more variants: Benchmarks/sandbox/bench.sh)", n.median / b.median, n.min / b.min))
        }
    }

    static func ms(_ ns: Double) -> String { String(format: "%.2f ms", ns / 1e6) }

    struct BenchError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    enum DoctorLike {
        static func isDirectory(_ p: String) -> Bool {
            var d: ObjCBool = false
            return FileManager.default.fileExists(atPath: p, isDirectory: &d) && d.boolValue
        }
    }

    /// posix_spawn + wait, stdout/stderr to /dev/null; with `config`, a pipe on fd 3 carrying it
    /// and a status pipe on fd 4 read to EOF (as the driver does).
    enum Spawn {
        static func run(_ path: String, _ args: [String], config: [UInt8]?) throws {
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            var cp: [Int32] = [-1, -1], sp: [Int32] = [-1, -1]
            if let config {
                guard pipe(&cp) == 0, pipe(&sp) == 0 else { throw BenchError("pipe failed") }
                for fd in cp + sp { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
                _ = config.withUnsafeBytes { write(cp[1], $0.baseAddress, $0.count) }
                close(cp[1])
                posix_spawn_file_actions_adddup2(&actions, cp[0], 3)
                posix_spawn_file_actions_adddup2(&actions, sp[1], 4)
            }
            let argv = [path] + args
            var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
            var envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
            defer { for a in cArgs + envp { free(a) } }
            var pid: pid_t = 0
            let rc = posix_spawn(&pid, path, &actions, nil, &cArgs, &envp)
            if config != nil {
                close(cp[0])
                close(sp[1])
            }
            guard rc == 0 else { throw BenchError("posix_spawn \(path): \(String(cString: strerror(rc)))") }
            if config != nil {
                var buf = [UInt8](repeating: 0, count: 4096)
                while buf.withUnsafeMutableBytes({ read(sp[0], $0.baseAddress, $0.count) }) > 0 {}
                close(sp[0])
            }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            guard status == 0 else { throw BenchError("\(path) exited with wait status \(status)") }
        }
    }
}
