import Foundation
import Host
import JSON
import Testing

/// `shell.exec` through the host with the real helper: results, literal arguments, caps,
/// timeouts, work dirs, environment, read-back.
@Suite("shell.exec")
struct ShellExecTests {
    @Test func echoRunsInTheSandbox() async throws {
        let h = try ShellHarness()
        let out = try await h.exec(["program": "/bin/echo", "args": ["hello", "sandbox"], "timeout_ms": 10000]).value()
        #expect(out["exit_code"] == 0)
        #expect(out["signal"] == .null)
        #expect(out["stdout"] == "hello sandbox\n")
        #expect(out["stdout_truncated"] == false && out["stderr_truncated"] == false)
        #expect(out["stderr"] == "")
        #expect(out["killed"] == false && out["kill_reason"] == .null && out["timed_out"] == false)
        #expect(out["sandbox"] == "namespaces")
        #expect((out["duration_ms"]?.doubleValue ?? -1) > 0)
        #expect((out["max_rss_kb"]?.intValue ?? 0) > 0)
        #expect(out["setup_ms"]?.doubleValue != nil)
    }

    @Test func exitCodeAndStderr() async throws {
        let h = try ShellHarness()
        let f = try await h.exec(["program": "/bin/false"]).value()
        #expect(f["exit_code"] == 1 && f["killed"] == false)
        let ls = try await h.exec(["program": "/bin/ls", "args": ["/definitely-not-here"]]).value()
        #expect(ls["exit_code"] == 2)
        #expect(ls["stderr"]?.stringValue?.contains("No such file or directory") == true)
    }

    /// Battery case 23 through the driver: shell syntax reaches the program as plain bytes.
    @Test func argumentsArePassedLiterally() async throws {
        let h = try ShellHarness()
        let args: [String] = ["; rm -rf /", "$(id)", "`id`", "> /etc/x", "&&", "|", "*", "$HOME", "a b", "'q'", "\"dq\"", "\\n", ""]
        let out = try await h.exec(["program": "/usr/bin/printf", "args": .array((["%s\\n"] + args.dropFirst(0)).map { .string($0) })]).value()
        // printf's format is the first argument: every following one is printed as-is, one per line.
        let expected = args.map { $0 + "\n" }.joined()
        #expect(out["exit_code"] == 0)
        #expect(out["stdout"]?.stringValue == expected)
        let echo = try await h.exec(["program": "/bin/echo", "args": ["; rm -rf /", "$(id)", "`id`", "&&", "> /etc/x"]]).value()
        #expect(echo["stdout"] == "; rm -rf / $(id) `id` && > /etc/x\n")
        // Nothing was created on the host by the redirection-looking argument.
        #expect(!FileManager.default.fileExists(atPath: "/etc/x"))
    }

    @Test func stdinCwdAndEnvironment() async throws {
        setenv("NOVA_SHELL_TEST_SECRET_TOKEN", "s3cr3t-host-value", 1)
        setenv("AWS_SECRET_ACCESS_KEY", "aws-host-value", 1)
        let h = try ShellHarness()
        let wc = try await h.exec(["program": "/usr/bin/wc", "args": ["-c"], "stdin": "hello"]).value()
        #expect(wc["stdout"]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines) == "5")
        let big = String(repeating: "0123456789abcdef", count: 20_000)  // 320 KB: more than a pipe buffer
        let wcBig = try await h.exec(["program": "/usr/bin/wc", "args": ["-c"], "stdin": .string(big)]).value()
        #expect(wcBig["stdout"]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines) == "320000")
        let pwd = try await h.exec(["program": "/bin/pwd", "cwd": "sub/dir"]).value()
        #expect(pwd["stdout"] == "/work/sub/dir\n")
        let pwdAbs = try await h.exec(["program": "/bin/pwd", "cwd": "/work/x"]).value()
        #expect(pwdAbs["stdout"] == "/work/x\n")
        let env = try await h.exec(["program": "/usr/bin/env", "env": ["LANG": "C.UTF-8", "TZ": "UTC"]]).value()
        let lines = Set((env["stdout"]?.stringValue ?? "").split(separator: "\n").map(String.init))
        #expect(lines.contains("LANG=C.UTF-8") && lines.contains("TZ=UTC"))
        #expect(lines.contains("PATH=/usr/local/bin:/usr/bin:/bin"))
        let text = env["stdout"]?.stringValue ?? ""
        #expect(!text.contains("s3cr3t-host-value") && !text.contains("aws-host-value") && !text.contains("NOVA_SHELL_TEST"))
        #expect(lines.count == 3, "only PATH and the allowed variables: \(lines)")
    }

    @Test func environmentOutsideTheAllowlistIsRefused() async throws {
        let h = try ShellHarness()
        for name in ["PATH", "LD_PRELOAD", "HOME", "AWS_SECRET_ACCESS_KEY"] {
            let r = try await h.exec(["program": "/usr/bin/env", "env": [name: "/work"]])
            #expect(r.step.status == .failed)
            #expect(r.error?.code == "env_not_allowed", "\(name): \(String(describing: r.error))")
        }
        // Issue 10.5: an allowlist of "*" is a configuration error, and so is naming a variable
        // that is never passed; a prefix cannot reach loader, libc or shell hooks either.
        let open = try await ShellHarness(config: ShellFixtures.config(["env_allowlist": ["*"]])).exec(["program": "/usr/bin/env"])
        #expect(open.step.status == .failed && open.step.reason?.contains("'*' would let every call set any variable") == true, "\(open.step.reason ?? "-")")
        let named = try await ShellHarness(config: ShellFixtures.config(["env_allowlist": ["GCONV_PATH"]])).exec(["program": "/usr/bin/env"])
        #expect(named.step.reason?.contains("'GCONV_PATH' can never be set") == true, "\(named.step.reason ?? "-")")
        let prefixes = try ShellHarness(config: ShellFixtures.config(["env_allowlist": ["GLIBC_*", "LD_*", "BASH_*", "MY_*"]]))
        for name in ["GLIBC_TUNABLES", "LD_PRELOAD", "BASH_ENV"] {
            #expect(try await prefixes.exec(["program": "/usr/bin/env", "env": [name: "/work/x"]]).error?.code == "env_not_allowed", "\(name)")
        }
        #expect(try await prefixes.exec(["program": "/usr/bin/env", "env": ["MY_SETTING": "1"]]).succeeded)
    }

    /// Issue 10.5: the largest argument list the driver accepts (4096 arguments, 512 KiB in
    /// all) fits the helper's configuration limits and reaches the program intact.
    @Test func theMaximumArgumentListReachesTheProgram() async throws {
        let h = try ShellHarness()
        let args = (0..<4096).map { i -> JSONValue in .string(String(format: "%04d", i) + String(repeating: "a", count: 124)) }
        let out = try await h.exec(["program": "/bin/echo", "args": .array(args), "timeout_ms": 20000]).value()
        let words = out["stdout"]?.stringValue?.split(separator: " ") ?? []
        #expect(words.count == 4096, "\(out["stderr"] ?? "-")")
        #expect(words.first?.hasPrefix("0000a") == true && words.last?.hasPrefix("4095a") == true)
        #expect(try await h.exec(["program": "/bin/echo", "args": .array(args + ["one-more"])]).step.status == .failed)
    }

    @Test func outputCapsKillAndMarkTruncated() async throws {
        let h = try ShellHarness(config: ShellFixtures.config(["max_stdout_bytes": 4096, "max_stderr_bytes": 512]))
        let yes = try await h.exec(["program": "/usr/bin/yes", "args": ["flood"], "timeout_ms": 20000]).value()
        #expect(yes["stdout_truncated"] == true)
        #expect(yes["stdout"]?.stringValue?.utf8.count == 4096)
        #expect(yes["stdout"]?.stringValue?.hasPrefix("flood\nflood\n") == true)
        #expect((yes["stdout_bytes"]?.intValue ?? 0) > 4096)
        #expect(yes["killed"] == true && yes["kill_reason"] == "output_limit" && yes["signal"] == 9)
        // stderr has its own cap.
        let missing = (0..<200).map { JSONValue.string("/missing-\($0)") }
        let ls = try await h.exec(["program": "/bin/ls", "args": .array(missing)]).value()
        #expect(ls["stderr_truncated"] == true)
        #expect(ls["stderr"]?.stringValue?.utf8.count == 512)
        #expect(ls["stdout_truncated"] == false)
    }

    @Test func wallClockTimeoutKillsAndReportsTimeout() async throws {
        let h = try ShellHarness()
        let out = try await h.exec(["program": "/bin/sleep", "args": ["30"], "timeout_ms": 300]).value()
        #expect(out["killed"] == true)
        #expect(out["kill_reason"] == "timeout" && out["timed_out"] == true)
        #expect(out["signal"] == 9 && out["exit_code"] == .null)
        // A CPU loop past the wall-clock limit (battery case 10).
        let cpu = try await h.exec(["program": "/usr/bin/sha256sum", "args": ["/dev/zero"], "timeout_ms": 400]).value()
        #expect(cpu["kill_reason"] == "timeout" && cpu["killed"] == true)
    }

    @Test func cpuLimitIsReportedAsSuch() async throws {
        let h = try ShellHarness(config: ShellFixtures.config(["limits": ["cpu_seconds": 1]]))
        let out = try await h.exec(["program": "/usr/bin/sha256sum", "args": ["/dev/zero"], "timeout_ms": 30000]).value()
        #expect(out["killed"] == true)
        #expect(out["kill_reason"] == "cpu_limit", "\(out)")
        #expect(out["timed_out"] == false)
    }

    @Test func freshWorkDirPerCallRemovedAfterwards() async throws {
        let h = try ShellHarness()
        let a = try await h.exec(["program": "/usr/bin/tee", "args": ["note.txt"], "stdin": "first", "read_files": ["note.txt"]]).value()
        #expect(a["files"]?[0]?["content"] == "first")
        #expect(a["files"]?[0]?["encoding"] == "utf-8" && a["files"]?[0]?["truncated"] == false)
        // The next call starts empty: the file is gone.
        let b = try await h.exec(["program": "/bin/ls", "args": ["-A", "/work"]]).value()
        #expect(b["stdout"] == "")
        let left = try FileManager.default.contentsOfDirectory(atPath: h.workRoot).filter { $0.hasPrefix("run-") }
        #expect(left.isEmpty, "work dirs left behind: \(left)")
        // The work root is not writable by others.
        let attrs = try FileManager.default.attributesOfItem(atPath: h.workRoot)
        #expect(((attrs[.posixPermissions] as? Int) ?? 0o777) & 0o022 == 0)
    }

    @Test func persistentWorkDirOnlyWhenConfigured() async throws {
        let plain = try ShellHarness()
        let refused = try await plain.exec(["program": "/bin/ls", "workdir": "keep"])
        #expect(refused.error?.code == "workdir_not_allowed")
        let h = try ShellHarness(config: ShellFixtures.config(["persistent_workdirs": true]))
        _ = try await h.exec(["program": "/usr/bin/tee", "args": ["kept.txt"], "stdin": "still here", "workdir": "keep"]).value()
        let again = try await h.exec(["program": "/bin/cat", "args": ["kept.txt"], "workdir": "keep"]).value()
        #expect(again["stdout"] == "still here")
        #expect(FileManager.default.fileExists(atPath: h.workRoot + "/persistent/keep/kept.txt"))
    }

    /// Battery case 4, host side: a symlink planted in the work dir is never followed.
    @Test func readBackNeverFollowsPlantedLinks() async throws {
        let h = try ShellHarness()
        let out = try await h.exec(["program": "/bin/ln", "args": ["-s", "/etc/shadow", "leak"], "read_files": ["leak", "missing", "../etc/passwd"]])
        #expect(out.error?.code == "path_outside_workdir")  // '..' is refused before anything runs
        let r = try await h.exec(["program": "/bin/ln", "args": ["-s", "/etc/hostname", "leak"], "read_files": ["leak", "missing"]]).value()
        #expect(r["exit_code"] == 0)
        #expect(r["files"]?[0]?["error"] == "symlink_refused")
        #expect(r["files"]?[1]?["error"] == "not_found")
        // A link to a directory in the middle of the path is refused too.
        let mid = try await h.exec(["program": "/bin/ln", "args": ["-s", "/etc", "etc"], "read_files": ["etc/hostname"]]).value()
        #expect(mid["files"]?[0]?["error"] == "symlink_refused")
        // Directories are not files.
        let dir = try await h.exec(["program": "/bin/mkdir", "args": ["d"], "read_files": ["d"]]).value()
        #expect(dir["files"]?[0]?["error"] == "not_regular_file")
    }

    @Test func binaryOutputIsBase64() async throws {
        let h = try ShellHarness()
        let out = try await h.exec(["program": "/usr/bin/printf", "args": ["\\377\\376\\000A"]]).value()
        #expect(out["stdout_encoding"] == "base64")
        #expect(Data(base64Encoded: out["stdout"]?.stringValue ?? "") == Data([0xFF, 0xFE, 0x00, 0x41]))
    }

    @Test func sandboxHasItsOwnHostnameUserAndNoNetwork() async throws {
        let h = try ShellHarness()
        let host = try await h.exec(["program": "/bin/hostname"]).value()
        #expect(host["stdout"] == "nova-sandbox\n")
        let id = try await h.exec(["program": "/usr/bin/id", "args": ["-u"]]).value()
        #expect(id["stdout"] == "1000\n")
        // Its own network namespace: only a loopback interface exists (and it is down).
        let net = try await h.exec(["program": "/bin/cat", "args": ["/proc/net/dev"]]).value()
        let interfaces = (net["stdout"]?.stringValue ?? "").split(separator: "\n").dropFirst(2)
            .compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) }
        #expect(interfaces == ["lo"], "\(interfaces)")
        // /etc/shadow does not exist inside (battery case 1).
        let shadow = try await h.exec(["program": "/bin/cat", "args": ["/etc/shadow"]]).value()
        #expect(shadow["exit_code"] == 1)
        #expect(shadow["stderr"]?.stringValue?.contains("No such file or directory") == true)
    }

    @Test func concurrentCalls() async throws {
        let h = try ShellHarness()
        try await withThrowingTaskGroup(of: JSONValue.self) { group in
            for i in 0..<6 {
                group.addTask { try await h.exec(["program": "/bin/echo", "args": [.string("call-\(i)")]]).value() }
            }
            var seen = Set<String>()
            for try await out in group {
                #expect(out["exit_code"] == 0)
                seen.insert(out["stdout"]?.stringValue ?? "")
            }
            #expect(seen == Set((0..<6).map { "call-\($0)\n" }))
        }
    }

    @Test func runsInAProcessIsolatedRunnerToo() async throws {
        let h = try ShellHarness(isolation: .process)
        let out = try await h.exec(["program": "/bin/echo", "args": ["from the runner"]]).value()
        #expect(out["stdout"] == "from the runner\n" && out["sandbox"] == "namespaces")
    }
}
