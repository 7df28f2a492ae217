import Foundation
import Host
import JSON
import Testing

/// Which programs and arguments may run: the policy (`shell_programs`, `shell_args`) and the
/// driver's own allowlist, both enforced; relative programs and programs in the work dir refused.
@Suite("shell allowlists")
struct ShellPolicyTests {
    static let profile: JSONValue = [
        "principals": ["uma": "user", "ada": "admin"],
        "rules": [
            ["id": "admin-all", "effect": "allow", "roles": ["admin"], "tools": ["*"]],
            ["id": "shell", "effect": "allow", "roles": ["user"], "tools": ["shell.exec"],
             "conditions": ["shell_programs": ["/bin/echo", "/usr/bin/wc", "/usr/bin/od"],
                            "shell_args": ["/bin/echo": ["[a-z]+", "-n"], "/usr/bin/wc": ["-[clw]"]]]],
        ],
    ]

    func harness() throws -> ShellHarness {
        try ShellHarness(gate: PolicyEngine(profile: PolicyProfile(json: Self.profile)))
    }

    @Test func programAllowlistThroughThePolicyEngine() async throws {
        let h = try harness()
        let ok = try await h.exec(["program": "/bin/echo", "args": ["hello", "world"]], principal: "uma").value()
        #expect(ok["stdout"] == "hello world\n")
        // Not in shell_programs (the driver would run it): denied by the policy, nothing runs.
        let ls = try await h.exec(["program": "/bin/ls", "args": []], principal: "uma")
        #expect(ls.step.status == .denied)
        #expect(ls.step.reason?.contains("not in shell_programs") == true, "\(ls.step.reason ?? "-")")
        #expect(ls.step.attempts.first?.decision?.ruleId == "default-deny")
        // A stranger is denied whatever the program.
        #expect(try await h.exec(["program": "/bin/echo", "args": ["hi"]], principal: "eve").step.status == .denied)
    }

    @Test func argumentPatternsThroughThePolicyEngine() async throws {
        let h = try harness()
        #expect(try await h.exec(["program": "/bin/echo", "args": ["-n", "abc"]], principal: "uma").succeeded)
        for bad in ["; rm -rf /", "$(id)", "Hello", "abc def", "-e"] {
            let r = try await h.exec(["program": "/bin/echo", "args": [.string(bad)]], principal: "uma")
            #expect(r.step.status == .denied, "\(bad) should be denied")
            #expect(r.step.reason?.contains("matches no pattern") == true)
        }
        let wc = try await h.exec(["program": "/usr/bin/wc", "args": ["-c"], "stdin": "abc"], principal: "uma").value()
        #expect(wc["stdout"]?.stringValue?.trimmingCharacters(in: .whitespaces) == "3\n")
        #expect(try await h.exec(["program": "/usr/bin/wc", "args": ["--files0-from=/etc/passwd"]], principal: "uma").step.status == .denied)
        // The admin rule has no conditions: admins pass the policy, the driver still decides.
        #expect(try await h.exec(["program": "/bin/echo", "args": ["Any Thing"]], principal: "ada").succeeded)
    }

    @Test func driverAllowlistHoldsEvenWhenThePolicyAllows() async throws {
        let h = try harness()
        // /usr/bin/od is in the policy's shell_programs but not in the driver's allowed_programs.
        let r = try await h.exec(["program": "/usr/bin/od", "args": []], principal: "uma")
        #expect(r.step.status == .failed)
        #expect(r.error?.code == "program_not_allowed")
        #expect(r.error?.kind == .invalidArgument)
        // …and an admin, whom the policy lets through, is stopped the same way.
        let sh = try await h.exec(["program": "/bin/sh", "args": ["-c", "id"]], principal: "ada")
        #expect(sh.error?.code == "program_not_allowed")
    }

    @Test func defaultPolicyProfile() async throws {
        let engine = PolicyEngine(profile: try PolicyProfile.load(ShellFixtures.root + "/configs/policy.default.json"))
        let h = try ShellHarness(gate: engine)
        #expect(try await h.exec(["program": "/bin/echo", "args": ["ok"]], principal: "local").succeeded)
        let sh = try await h.exec(["program": "/bin/sh", "args": ["-c", "echo pwned"]], principal: "local")
        #expect(sh.step.status == .denied)
        #expect(try await h.exec(["program": "/bin/echo", "args": ["ok"]], principal: "nobody-known").step.status == .denied)
    }

    /// Battery case 25 through the driver: relative names and PATH lookups are refused.
    @Test func relativeProgramsAndPathLookupsAreRefused() async throws {
        let h = try ShellHarness()
        for program in ["echo", "./echo", "bin/echo", "../bin/echo", "~/echo"] {
            let r = try await h.exec(["program": .string(program), "args": ["x"]])
            #expect(r.step.status == .failed)
            #expect(r.error?.code == "relative_program", "\(program): \(String(describing: r.error))")
            #expect(r.error?.message.contains("absolute path") == true)
        }
        for program in ["/bin/../bin/echo", "/bin//echo", "/bin/./echo", "/bin/echo/"] {
            #expect(try await h.exec(["program": .string(program)]).error?.code == "invalid_program", "\(program)")
        }
        // A program planted in the work dir is never run, even when allowlisted (/work/planted is in
        // the test configuration's allowed_programs on purpose).
        let planted = try await h.exec(["program": "/work/planted"])
        #expect(planted.error?.code == "program_in_workdir")
        // No PATH can be passed in: it would be refused, and the helper fixes PATH anyway.
        #expect(try await h.exec(["program": "/usr/bin/env", "env": ["PATH": "/work"]]).error?.code == "env_not_allowed")
        // The helper itself refuses relative programs too (second line): config message check.
        let helper = try ShellFixtures.helper()
        let cfg = ShellFixtures.tempDir("nova-shell-cfg") + "/cfg"
        _ = FileManager.default.createFile(atPath: cfg, contents: Data("version=1\u{0}program=echo\u{0}".utf8))
        let r = try await runProcess(helper, ["--config", cfg])
        #expect(r.status == 125)
        #expect(r.stderr.contains("config"))
    }

    @Test func inputValidation() async throws {
        let h = try ShellHarness(config: ShellFixtures.config(["max_timeout_ms": 5000, "max_stdin_bytes": 10]))
        #expect(try await h.exec(["program": "/bin/echo", "timeout_ms": 6000]).error?.code == "timeout_too_long")
        #expect(try await h.exec(["program": "/usr/bin/wc", "stdin": "more than ten bytes"]).error?.code == "stdin_too_large")
        #expect(try await h.exec(["program": "/bin/pwd", "cwd": "../x"]).error?.code == "path_outside_workdir")
        #expect(try await h.exec(["program": "/bin/pwd", "cwd": "/etc"]).error?.code == "path_outside_workdir")
        let nul = try await h.exec(["program": "/bin/echo", "args": ["a\u{0}b"]])
        #expect(nul.step.status == .failed && nul.error?.kind == .invalidArgument)
    }

    @Test func badConfigurationIsRefused() async throws {
        for bad: JSONValue in [["allowed_programs": ["echo"]], ["bogus": true], ["limits": ["nproc": 0]],
                               ["helper": "relative/nova-sandbox"], ["env_allowlist": ["A=B"]]] {
            let h = try ShellHarness(config: bad)
            let r = try await h.exec(["program": "/bin/echo"])
            // The driver cannot be created: the step fails before any attempt, naming the problem.
            #expect(r.step.status == .failed, "\(bad)")
            #expect(r.step.attempts.isEmpty)
            #expect(r.step.reason?.contains("shell configuration") == true, "\(bad): \(r.step.reason ?? "-")")
        }
    }
}
