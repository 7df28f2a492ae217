import Foundation
import Host
import JSON
import Testing

/// Deadlines and survivors, the refusal to run unsandboxed, the helper's resolution, the CLI
/// end to end (`nova-host run`, `nova-host doctor`).
@Suite("shell lifecycle")
struct ShellLifecycleTests {
    /// A run under the step's deadline, with several processes in the sandbox; afterwards no
    /// process of it survives (scanned in /proc: by command line and by pid namespace).
    @Test func deadlineKillsTheWholeSandboxAndNothingSurvives() async throws {
        let h = try ShellHarness()
        let marker = "61.\(Int.random(in: 100_000...999_999))"
        // xargs starts four `sleep MARKER` in parallel: five sandbox processes plus its init.
        let task = Task { try await h.exec(["program": "/usr/bin/xargs", "args": ["-P", "4", "-n", "1", "/bin/sleep"],
                                            "stdin": .string(Array(repeating: marker, count: 4).joined(separator: " "))],
                                           timeoutMs: 8000) }
        // Bounded waits, generous for a loaded machine (they end as soon as the state is seen);
        // the deadline is long enough that the sleeps start before it even under load.
        var seen: [Procs.Info] = []
        let until = Date().addingTimeInterval(60)
        while Date() < until {
            seen = Procs.matching(marker)
            if seen.count >= 4 { break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        #expect(seen.count >= 4, "the sandbox's sleeps were never seen in /proc (\(seen.count))")
        let namespaces = Set(seen.compactMap(\.pidNamespace))
        let hostNamespace = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")
        #expect(!namespaces.isEmpty && !namespaces.contains(hostNamespace), "the sleeps run in their own pid namespace")

        let r = try await task.value
        #expect(r.step.status == .failed)
        #expect(r.error?.kind == .deadline, "\(String(describing: r.error))")
        // Nothing with the marker, nothing in that pid namespace, none of the pids seen still
        // alive (not even as a zombie). The driver answers only after the helper reaped the whole
        // namespace (wait_teardown), normally before the host's 50 ms grace ends; should the host
        // have stopped waiting first on a loaded machine, the teardown gets 10 s to finish.
        func survivors() -> [Procs.Info] {
            Procs.all().filter { p in
                p.cmdline.contains { $0.contains(marker) } || (p.pidNamespace.map(namespaces.contains) ?? false)
                    || seen.contains { $0.pid == p.pid && $0.cmdline == p.cmdline }
            }
        }
        let settle = Date().addingTimeInterval(10)
        while Date() < settle, !survivors().isEmpty { try await Task.sleep(nanoseconds: 10_000_000) }
        let left = survivors()
        #expect(left.isEmpty, "survivors: \(left.map { "\($0.pid) \($0.state) \($0.cmdline)" })")
    }

    /// The same with the input's `timeout_ms`: a normal result that says it was killed by the timeout.
    @Test func inputTimeoutLeavesNoSurvivors() async throws {
        let h = try ShellHarness()
        let marker = "62.\(Int.random(in: 100_000...999_999))"
        let out = try await h.exec(["program": "/usr/bin/xargs", "args": ["-P", "3", "-n", "1", "/bin/sleep"],
                                    "stdin": .string("\(marker) \(marker) \(marker)"), "timeout_ms": 700]).value()
        #expect(out["kill_reason"] == "timeout" && out["timed_out"] == true && out["killed"] == true)
        #expect(Procs.matching(marker).isEmpty)
    }

    /// Cancelling the call (the task) kills the sandbox too.
    @Test func cancellationKillsTheSandbox() async throws {
        let h = try ShellHarness()
        let marker = "63.\(Int.random(in: 100_000...999_999))"
        let task = Task { try await h.exec(["program": "/bin/sleep", "args": [.string(marker)]]) }
        let until = Date().addingTimeInterval(60)
        while Date() < until, Procs.matching(marker).isEmpty { try await Task.sleep(nanoseconds: 20_000_000) }
        #expect(!Procs.matching(marker).isEmpty)
        task.cancel()
        let r = try await task.value
        #expect(r.step.status == .cancelled || r.error?.kind == .cancelled, "\(r.step.status) \(String(describing: r.error))")
        let gone = Date().addingTimeInterval(30)
        while Date() < gone, !Procs.matching(marker).isEmpty { try await Task.sleep(nanoseconds: 20_000_000) }
        #expect(Procs.matching(marker).isEmpty)
    }

    /// A helper that fails like nova-sandbox does where user namespaces are unavailable.
    static func fakeHelper(stage: String = "userns") throws -> String {
        let dir = ShellFixtures.tempDir("nova-shell-fake")
        let path = dir + "/nova-sandbox"
        let record = #"{"stage":"\#(stage)","errno":1,"error":"EPERM","message":"unshare(CLONE_NEWUSER): Operation not permitted (simulated: user namespaces unavailable)"}"#
        let script = "#!/bin/sh\nprintf '%s\\n' '\(record)' >&4\nexit 125\n"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    @Test func refusesToRunUnsandboxedByDefault() async throws {
        for stage in ["userns", "seccomp"] {
            let h = try ShellHarness(config: ShellFixtures.config(["helper": .string(try Self.fakeHelper(stage: stage))]))
            let r = try await h.exec(["program": "/bin/echo", "args": ["should not run"]])
            #expect(r.step.status == .failed)
            #expect(r.step.output == nil)
            #expect(r.error?.kind == .unsupported)
            #expect(r.error?.code == "sandbox_unavailable")
            #expect(r.error?.message.contains("nova-host doctor") == true)
            #expect(r.error?.message.contains("stage \(stage)") == true)
        }
        // A missing helper is refused the same way.
        let missing = try ShellHarness(config: ShellFixtures.config(["helper": "/nonexistent/nova-sandbox"]))
        let m = try await missing.exec(["program": "/bin/echo"])
        #expect(m.error?.code == "sandbox_unavailable")
        #expect(m.error?.message.contains("/nonexistent/nova-sandbox") == true)
    }

    @Test func weakerModeOnlyWhenAllowedAndRecorded() async throws {
        let h = try ShellHarness(config: ShellFixtures.config(["helper": .string(try Self.fakeHelper()), "allow_unsandboxed": true,
                                                               "max_stdout_bytes": 1000]))
        let out = try await h.exec(["program": "/bin/echo", "args": ["unsandboxed", "$(id)"]]).value()
        #expect(out["exit_code"] == 0)
        #expect(out["stdout"] == "unsandboxed $(id)\n")
        #expect(out["sandbox"] == "none")
        #expect(out["sandbox_note"]?.stringValue?.contains("userns") == true)
        // Limits still hold in the weaker mode: timeout and output cap.
        let slow = try await h.exec(["program": "/bin/sleep", "args": ["30"], "timeout_ms": 300]).value()
        #expect(slow["kill_reason"] == "timeout" && slow["sandbox"] == "none")
        let yes = try await h.exec(["program": "/usr/bin/yes"]).value()
        #expect(yes["stdout_truncated"] == true && yes["kill_reason"] == "output_limit")
        if geteuid() == 0 {
            let id = try await h.exec(["program": "/usr/bin/id", "args": ["-u"]]).value()
            #expect(id["stdout"] == "2000000000\n", "the weaker mode drops root to the dedicated uid")
        }
    }

    /// Without `helper` in the configuration, the driver finds `Sources/Sandbox/build/nova-sandbox`
    /// under its drivers directory's parent.
    @Test func helperIsFoundNextToTheDriversDirectory() async throws {
        let base = ShellFixtures.tempDir("nova-shell-layout")
        let drivers = base + "/drivers"
        try FileManager.default.createDirectory(atPath: drivers, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/Sources/Sandbox/build", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ShellFixtures.binDir + "/libnova_shell.so", toPath: drivers + "/libnova_shell.so")
        chmod(drivers + "/libnova_shell.so", 0o644)
        try FileManager.default.copyItem(atPath: try ShellFixtures.helper(), toPath: base + "/Sources/Sandbox/build/nova-sandbox")
        var cfg = try ShellFixtures.config().objectValue!
        cfg["helper"] = nil
        let h = try ShellHarness(config: .object(cfg), driversDirectory: drivers)
        let r = try await h.exec(["program": "/bin/echo", "args": ["found"]])
        if ProcessInfo.processInfo.environment["NOVA_SANDBOX"] == nil {
            let out = try r.value()
            #expect(out["stdout"] == "found\n" && out["sandbox"] == "namespaces")
            // Without it anywhere: refused, naming the places it looked at.
            try FileManager.default.removeItem(atPath: base + "/Sources/Sandbox/build/nova-sandbox")
            let h2 = try ShellHarness(config: .object(cfg), driversDirectory: drivers)
            let gone = try await h2.exec(["program": "/bin/echo"])
            if gone.error?.code == "sandbox_unavailable" {
                #expect(gone.error?.message.contains(base + "/Sources/Sandbox/build/nova-sandbox") == true)
            } else {
                // A nova-sandbox on the test process's PATH is the last resort and may be found.
                #expect(gone.succeeded)
            }
        } else {
            #expect(r.succeeded)
        }
    }

    /// `nova-host run examples/shell.plan.json` with the default policy, the shell driver in a
    /// runner process; the episode records the sandbox.
    @Test func endToEndThroughNovaHostRun() async throws {
        let nova = try ShellFixtures.novaHost()
        let dir = ShellFixtures.tempDir("nova-shell-e2e")
        let drivers = dir + "/drivers"
        try FileManager.default.createDirectory(atPath: drivers, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ShellFixtures.binDir + "/libnova_shell.so", toPath: drivers + "/libnova_shell.so")
        chmod(drivers + "/libnova_shell.so", 0o644)
        let settings: JSONValue = ["drivers": ["shell": ["isolation": "process", "config": try ShellFixtures.config()]]]
        try settings.serialized(pretty: true).write(toFile: dir + "/drivers.json", atomically: true, encoding: .utf8)
        let plan = ShellFixtures.root + "/examples/shell.plan.json"
        let args = ["run", plan, "--json", "--input", "text=one two three",
                    "--drivers", drivers, "--driver-config", dir + "/drivers.json", "--data", dir + "/data",
                    "--policy", ShellFixtures.root + "/configs/policy.default.json"]
        let r = try await runProcess(nova, args, cwd: dir)
        #expect(r.status == 0, "nova-host run failed: \(r.stdout) \(r.stderr)")
        let result = try JSONValue.parse(Array(r.stdout.utf8))
        #expect(result["status"] == "succeeded")
        let output = try #require(result["output"])
        #expect(output["echoed"] == "one two three\n")
        #expect(output["words"]?.stringValue?.trimmingCharacters(in: .whitespaces) == "3\n")
        #expect(output["sandbox"] == "namespaces")
        let runId = try #require(result["run_id"]?.stringValue)
        let stored = try EpisodeSegmentLog(dataDirectory: dir + "/data", openMode: .noRecovery).show(runId: runId)
        let text = String(decoding: stored.document.canonicalBytes(), as: UTF8.self)
        #expect(text.contains("\"sandbox\":\"namespaces\"") || text.contains("\"sandbox\": \"namespaces\""))

        // The same plan with a program the policy does not allow is denied (exit 3).
        let denied = try await runProcess(nova, ["run", plan, "--json", "--input", "program=/bin/sh",
                                           "--drivers", drivers, "--driver-config", dir + "/drivers.json", "--data", dir + "/data",
                                           "--policy", ShellFixtures.root + "/configs/policy.default.json"], cwd: dir)
        #expect(denied.status == 3, "\(denied.stdout) \(denied.stderr)")
    }

    @Test func doctorReportsAUsableSandbox() async throws {
        let nova = try ShellFixtures.novaHost()
        let dir = ShellFixtures.tempDir("nova-shell-doctor")
        var env = ProcessInfo.processInfo.environment
        env["NOVA_SANDBOX"] = try ShellFixtures.helper()
        let r = try await runProcess(nova, ["doctor", "--json", "--drivers", try ShellFixtures.driversDirectory()], environment: env, cwd: dir)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let report = try JSONValue.parse(Array(r.stdout.utf8))
        #expect(report["sandbox_usable"] == true)
        #expect(report["user_namespaces"]?["available"] == true)
        #expect(report["seccomp"]?["available"] == true)
        #expect(report["cgroup"]?["version"]?.stringValue != nil)
        // The memory bound a sandbox gets: a cgroup as root here, otherwise said plainly.
        let bound = report["cgroup"]?["memory_bound"]?.stringValue ?? ""
        #expect(geteuid() == 0 ? bound.hasPrefix("cgroup-") : ["cgroup-v1", "cgroup-v2", "rlimit-only"].contains(bound))
        #expect(report["cgroup"]?["used_by_sandbox"] == .bool(bound.hasPrefix("cgroup-")))
        #expect(report["drivers"]?["shell_driver"] == true)
        #expect(report["probe"]?["selftest"]?["ok"] == true)
        #expect(report["helper"]?["found_by"] == "NOVA_SANDBOX")

        // With a helper that cannot build the sandbox: exit 1 and a hint.
        env["NOVA_SANDBOX"] = "/nonexistent/nova-sandbox"
        let bad = try await runProcess(nova, ["doctor", "--drivers", dir], environment: env, cwd: dir)
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("NOT usable"))
        #expect(bad.stdout.contains("hint:"))
    }
}

/// Issue 10.7: work-dir cleanup has no depth limit, enters directories the program made
/// unreadable (mode 000) even when the host is not root, and reports what it could not remove.
@Suite("shell work-dir cleanup")
struct ShellCleanupTests {
    /// As uid 65534 (no root to bypass permissions), unsandboxed so the program writes the
    /// host work dir directly: a 100-level tree with mode-000 directories at depth 2 and 70
    /// (the old cleanup gave up below 64 levels and `rm -rf` could not enter them).
    @Test func aDeepUnreadableTreeIsRemovedAsANonRootHost() async throws {
        try #require(geteuid() == 0, "this test drops to uid 65534 and needs root to do so (CI runs as root)")
        // Under /tmp, not the test temp dir: uid 65534 must reach every path component.
        let dir = "/tmp/nova-shell-cleanup-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { TestPaths.remove(dir) }  // a copy of nova-host and its libraries: ~200 MB a run
        chmod(dir, 0o755)
        let drivers = dir + "/drivers", work = dir + "/work", data = dir + "/data"
        for d in [drivers, work, data] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        for d in [work, data, drivers] { chown(d, 65534, 65534) }  // drivers: the host writes its .gen copies there
        // The binary and driver are copied out: the checkout may sit below a 0700 directory.
        try copyExecutable(try ShellFixtures.novaHost(), to: dir + "/nova-host")
        // …with the third-party packages' library, which it finds beside itself ($ORIGIN).
        try copyExecutable(ShellFixtures.binDir + "/libNovaDependencies.so", to: dir + "/libNovaDependencies.so")
        try FileManager.default.copyItem(atPath: ShellFixtures.binDir + "/libnova_shell.so", toPath: drivers + "/libnova_shell.so")
        chmod(drivers + "/libnova_shell.so", 0o644)
        let config: JSONValue = ["helper": .string(dir + "/no-such-helper"), "allow_unsandboxed": true,
                                 "allowed_programs": ["/bin/sh"], "work_root": .string(work + "/root")]
        let settings: JSONValue = ["drivers": ["shell": ["config": config]]]
        try settings.serialized().write(toFile: dir + "/drivers.json", atomically: true, encoding: .utf8)
        try #"{"default_role": "user", "rules": [{"id": "all", "effect": "allow", "tools": ["*"]}]}"#.write(toFile: dir + "/policy.json", atomically: true, encoding: .utf8)
        let script = #"p=.; for i in $(seq 100); do p=$p/d; mkdir $p || exit 1; done; head -c 65536 /dev/zero > $p/blob; "#
            + #"chmod 000 ./d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d && chmod 000 ./d/d"#
        let plan: JSONValue = ["steps": [["id": "deep", "call": "shell.exec", "input": ["program": "/bin/sh", "args": ["-c", .string(script)]]]]]
        try plan.serialized().write(toFile: dir + "/plan.json", atomically: true, encoding: .utf8)
        for f in ["drivers.json", "policy.json", "plan.json"] { chmod(dir + "/" + f, 0o644) }
        let r = try await runProcess("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", dir + "/nova-host", "run", dir + "/plan.json", "--json",
                                                          "--drivers", drivers, "--driver-config", dir + "/drivers.json", "--data", data,
                                                          "--policy", dir + "/policy.json"], cwd: dir)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let result = try JSONValue.parse(Array(r.stdout.utf8))
        #expect(result["status"] == "succeeded" && result["output"]?["exit_code"] == 0, "\(r.stdout)")
        #expect(result["output"]?["cleanup_error"] == nil, "\(r.stdout)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: work + "/root").filter { $0.hasPrefix("run-") }) ?? []
        #expect(left.isEmpty, "work dirs left behind: \(left)")
    }

    /// Issue 10.6: work dirs left by a process killed mid-call are swept when the driver starts;
    /// one another live process holds (its lock) and a fresh one are left alone.
    @Test func staleWorkDirsAreSweptAtStartUp() async throws {
        let config = try ShellFixtures.config()
        let root = try #require(config["work_root"]?.stringValue)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        chmod(root, 0o700)
        func make(_ name: String, ageSeconds: Int) throws -> String {
            let path = root + "/" + name
            try FileManager.default.createDirectory(atPath: path + "/deep/er", withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: path + "/deep/er/file", contents: Data("x".utf8)))
            var times = [timespec(tv_sec: time(nil) - ageSeconds, tv_nsec: 0), timespec(tv_sec: time(nil) - ageSeconds, tv_nsec: 0)]
            _ = utimensat(AT_FDCWD, path, &times, 0)
            return path
        }
        let stale = try make("run-stale1", ageSeconds: 3600)
        let held = try make("run-held01", ageSeconds: 3600)
        // Recent: dated an hour ahead, so however long the driver takes to start under load,
        // it is never old enough to sweep (a run dir a live process just made and not yet locked).
        let fresh = try make("run-fresh1", ageSeconds: -3600)
        let other = try make("keep-me", ageSeconds: 3600)
        // Another live process's run: it holds the lock on its directory.
        let lockFd = open(held, O_RDONLY | O_DIRECTORY)
        defer { close(lockFd) }
        #expect(flock(lockFd, LOCK_EX | LOCK_NB) == 0)

        let h = try ShellHarness(config: config)
        #expect(try await h.exec(["program": "/bin/echo", "args": ["hi"]]).succeeded)
        #expect(!FileManager.default.fileExists(atPath: stale), "a stale run dir survived the start-up sweep")
        for kept in [held, fresh, other] { #expect(FileManager.default.fileExists(atPath: kept), "\(kept) was removed") }
    }
}

/// Copies an executable through a close-on-exec descriptor. `FileManager.copyItem` writes
/// through a descriptor without `O_CLOEXEC`: a child another test forks meanwhile inherits it
/// open for writing, and running the copy then fails with ETXTBSY (setpriv exit 126).
func copyExecutable(_ source: String, to destination: String) throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: source))
    let fd = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
    guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    defer { close(fd) }
    try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            offset += n
        }
    }
    fchmod(fd, 0o755)
}
