import Foundation
import Testing
import Host
@testable import Runs
import JSON

/// Issue 11 item 4: drivers declare what policy may read (`policyInputs` in the manifest);
/// conditions are evaluated over those declarations, so a third-party driver gets them too.
@Suite("Policy inputs")
struct PolicyInputsTests {
    /// A third-party-style driver whose tool takes its URL in `target`, declared for policy.
    static let fetcherManifest = #"{"name":"fetcher","version":"0.1.0","description":"test","tools":[{"name":"get","description":"fetch","inputSchema":{"type":"object","properties":{"target":{"type":"string"}}},"policyInputs":{"url":"/target"}}]}"#

    func driverDir(manifest: String?) throws -> String {
        let dir = Fixtures.tempDir("policy-inputs")
        if let manifest {
            let quoted = "\"" + manifest.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            try Fixtures.buildVariant(into: dir, file: "libnova_fetcher.so", defines: ["-DMANIFEST_JSON=\(quoted)"])
        } else {
            try Fixtures.buildVariant(into: dir)
        }
        return dir
    }

    func run(_ runner: PlanRunner, _ call: String, _ input: JSONValue) async throws -> RunRecord {
        let plan = try Plan.parse(.object(["steps": [["id": "a", "call": .string(call), "input": input]]]))
        return await runner.run(plan, inputs: [:], principal: "uma", runId: RunId.make())
    }

    @Test func aThirdPartyDriverGetsHttpHostsThroughItsDeclaration() async throws {
        let dir = try driverDir(manifest: Self.fetcherManifest)
        let profile = try PolicyProfile(json: ["principals": ["uma": "user"], "rules": [
            ["id": "fetch-api", "effect": "allow", "tools": ["fetcher.get"], "conditions": ["http_hosts": ["api.example.com"]]]]])
        let runner = PlanRunner(registry: DriverRegistry(driversDirectory: dir), gate: PolicyEngine(profile: profile))
        let ok = try await run(runner, "fetcher.get", ["target": "https://api.example.com/v1"])
        #expect(ok.status == .succeeded, "\(ok.steps.first?.reason ?? "")")
        let evil = try await run(runner, "fetcher.get", ["target": "https://evil.example/"])
        #expect(evil.status == .denied)
        #expect(evil.steps.first?.attempts.first?.decision?.reason.contains("host 'evil.example' is not in http_hosts") == true)
        let none = try await run(runner, "fetcher.get", [:])
        #expect(none.steps.first?.attempts.first?.decision?.reason.contains("input.target has no host") == true)
    }

    @Test func aRuleNamingAToolThatDoesNotDeclareTheInputDeniesAndIsRefusedOnReload() async throws {
        let dir = try driverDir(manifest: nil)  // variant.ping declares no policy inputs
        let policyFile = dir + "/policy.json"
        Fixtures.write(#"{"principals": {"uma": "user"}, "rules": [{"id": "allow-all", "effect": "allow", "tools": ["*"]}]}"#, to: policyFile)
        let nova = try NovaHost(paths: HostPaths(driversDirectory: dir, dataDirectory: dir + "/data", policyFile: policyFile))
        let fine = try await run(nova.runner, "variant.ping", [:])
        #expect(fine.status == .succeeded)

        // A deny rule written for variant.ping over an input it does not declare must not be
        // silently skipped: the call is denied, naming the rule and the tool.
        let broken = #"{"principals": {"uma": "user"}, "rules": [{"id": "no-evil", "effect": "deny", "tools": ["variant.ping"], "conditions": {"http_hosts": ["*.evil"]}}, {"id": "allow-all", "effect": "allow", "tools": ["*"]}]}"#
        let engine = PolicyEngine(profile: try PolicyProfile(json: JSONValue.parse(broken)))
        let denied = engine.decide(GateRequest(runId: "r", principal: "uma", tool: "variant.ping", input: ["url": "https://x.evil/"], annotations: nil))
        #expect(!denied.allowed && denied.ruleId == "no-evil")
        #expect(denied.reason.contains("rule 'no-evil': http_hosts needs policy input 'url', which tool variant.ping does not declare"))

        // Reloading such a profile while the driver is loaded is refused, naming rule and tool.
        Fixtures.write(broken, to: policyFile)
        let report = nova.reloadPolicy()
        #expect(report.outcome == .failed)
        #expect(report.error?.contains("rule 'no-evil'") == true && report.error?.contains("variant.ping") == true, "\(report.error ?? "")")
        #expect(try await run(nova.runner, "variant.ping", [:]).status == .succeeded)
    }

    @Test func aGlobRuleOverAToolWithoutTheInputDoesNotApply() throws {
        let profile = try PolicyProfile(json: ["principals": ["uma": "user"], "rules": [
            ["id": "web", "effect": "allow", "tools": ["*"], "conditions": ["http_hosts": ["api.example.com"]]]]])
        let d = PolicyEngine(profile: profile).decide(GateRequest(runId: "r", principal: "uma", tool: "variant.ping",
                                                                  input: ["url": "https://api.example.com/"], annotations: nil))
        #expect(!d.allowed && d.ruleId == "default-deny")
        #expect(d.reason.contains("variant.ping declares no policy input 'url' (needed by http_hosts)"))
    }

    @Test func pointersReachNestedFieldsAndArrayItems() throws {
        let inputs = try PolicyInputs(manifest: ["url": "/request/targets/1", "program": "/a~1b"], at: "tools[0].policyInputs")
        let input: JSONValue = ["request": ["targets": ["https://one/", "https://two/"]], "a/b": "/bin/true"]
        #expect(inputs.value(.url, in: input)?.stringValue == "https://two/")
        #expect(inputs.value(.program, in: input)?.stringValue == "/bin/true")
        #expect(inputs.fieldName(.url) == "input.request.targets.1")
        #expect(inputs.value(.args, in: input) == nil)
    }

    @Test func badDeclarationsAreManifestErrors() {
        func error(_ policyInputs: JSONValue) -> String? {
            let manifest: JSONValue = ["name": "d", "version": "1.0.0", "description": "d",
                                       "tools": [["name": "t", "description": "t", "inputSchema": ["type": "object"], "policyInputs": policyInputs]]]
            do { _ = try DriverManifest(json: manifest); return nil } catch { return error.description }
        }
        #expect(error(["hostname": "/h"])?.contains("tools[0].policyInputs.hostname is not a policy input") == true)
        #expect(error(["url": "url"])?.contains("tools[0].policyInputs.url must be a JSON Pointer") == true)
        #expect(error(["url": ""])?.contains("must be a JSON Pointer") == true)
        #expect(error(["url": 3])?.contains("must be a JSON Pointer") == true)
        #expect(error("x")?.contains("tools[0].policyInputs must be an object") == true)
        #expect(error(["url": "/u"]) == nil)
    }
}

/// `nova-host policy validate`, run as a user would.
@Suite("policy validate")
struct PolicyValidateTests {
    func validate(policy: String) async throws -> (code: Int32, stdout: String, stderr: String) {
        let dir = Fixtures.tempDir("policy-validate")
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        try Fixtures.buildVariant(into: dir + "/drivers")
        Fixtures.write(policy, to: dir + "/policy.json")
        let r = try await ProcessRunner.run(TestPaths.novaHost, ["policy", "validate", "--drivers", dir + "/drivers", "--data", dir + "/data",
                                                                   "--policy", dir + "/policy.json"])
        return (r.status, r.stdout, r.stderr)
    }

    @Test func reportsARuleOverAnUndeclaredInput() async throws {
        let bad = try await validate(policy: #"{"rules": [{"id": "pings", "effect": "allow", "tools": ["variant.ping"], "conditions": {"shell_programs": ["/bin/true"]}}]}"#)
        #expect(bad.code == 2)
        #expect(bad.stderr.contains("rule 'pings': shell_programs needs policy input 'program', which tool variant.ping does not declare"), "\(bad.stderr)")
        let good = try await validate(policy: #"{"rules": [{"id": "pings", "effect": "allow", "tools": ["variant.*"], "conditions": {"shell_programs": ["/bin/true"]}}]}"#)
        #expect(good.code == 0 && good.stdout.contains("is valid for 1 tools of 1 drivers"), "\(good)")
    }
}
