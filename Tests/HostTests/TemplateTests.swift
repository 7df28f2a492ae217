import Foundation
import Testing
import Host
@testable import Runs
import JSON

/// Issue 16: templates (versions, params, phases), sub-runs and `foreach`.
@Suite("Templates")
struct TemplateTests {
    static let restock = """
        {"name": "restock", "version": "1.2.0", "description": "Reorder stock.",
         "params": {"type": "object", "required": ["sku"], "additionalProperties": false,
                    "properties": {"sku": {"type": "string"}, "threshold": {"type": "integer", "default": 5}, "tags": {"type": "array"}}},
         "phases": [{"name": "check", "steps": ["count"]}, {"name": "act", "steps": ["order"]}],
         "plan": {"steps": [
            {"id": "count", "call": "echo.echo", "input": {"sku": "${params.sku}", "threshold": "${params.threshold}", "tags": "${params.tags}"}},
            {"id": "order", "call": "echo.echo", "input": {"text": "order ${params.sku} below ${params.threshold}", "literal": "$${params.sku}", "prev": "${steps.count.output.sku}"}}],
          "output": "${steps.order.output}"}}
        """

    func template(_ text: String) throws -> PlanTemplate { try PlanTemplate(document: try JSONValue.parse(text)) }

    /// A host with the echo driver, a policy and a store; `templates` files go into `dir/templates`.
    func host(_ dir: String, policy: String = #"{"principals": {"uma": "user"}, "rules": [{"id": "all", "effect": "allow", "tools": ["*"]}]}"#,
              templates: [String: String] = [:]) async throws -> NovaHost {
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/templates", withIntermediateDirectories: true)
        try Fixtures.buildEcho(into: dir + "/drivers")
        Fixtures.write(policy, to: dir + "/policy.json")
        for (file, text) in templates { Fixtures.write(text, to: dir + "/templates/" + file) }
        var paths = HostPaths(driversDirectory: dir + "/drivers", dataDirectory: dir + "/data", policyFile: dir + "/policy.json")
        paths.templatesDirectory = dir + "/templates"
        return try NovaHost(paths: paths, episodes: await EpisodeLog.open(dataDirectory: dir + "/data"))
    }

    func run(_ nova: NovaHost, _ planText: String, template: TemplateProvenance? = nil) async throws -> RunResult {
        var s = RunSubmission(plan: try Plan.parse(JSONValue.parse(planText)), principal: "uma", origin: "test")
        s.template = template
        return await nova.pipeline.execute(try await nova.pipeline.prepare(s))
    }

    @Test func versionsAndReferencesOrderAndSelectAsSemverSays() throws {
        let versions = ["1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1", "1.2.1-alpha", "0.9.9"].compactMap(SemVer.init)
        #expect(versions.count == 6)
        #expect(SemVer("1.2.1-alpha")! < SemVer("1.2.1")! && SemVer("1.2.0")! < SemVer("1.10.0")!)
        #expect(SemVer("2.0.0-rc.1")! < SemVer("2.0.0-rc.10")! && SemVer("2.0.0-1")! < SemVer("2.0.0-alpha")!)
        for bad in ["1", "1.2", "01.2.3", "1.2.3+build", "1.2.3-", "v1.2.3"] { #expect(SemVer(bad) == nil, "\(bad)") }
        #expect(try TemplateRef.parse("restock").version.select(from: versions)?.description == "1.10.0")
        #expect(try TemplateRef.parse("restock@1").version.select(from: versions)?.description == "1.10.0")
        #expect(try TemplateRef.parse("restock@1.2").version.select(from: versions)?.description == "1.2.0")
        #expect(try TemplateRef.parse("restock@2").version.select(from: versions) == nil)
        #expect(try TemplateRef.parse("restock@2.0.0-rc.1").version.select(from: versions)?.description == "2.0.0-rc.1")
        #expect(throws: PlanError.self) { try TemplateRef.parse("Restock") }
        #expect(throws: PlanError.self) { try TemplateRef.parse("restock@x") }
    }

    @Test func paramsAreValidatedWithDefaultsAndSubstitutedWithTheirTypes() throws {
        let t = try template(Self.restock)
        #expect(t.id == "restock@1.2.0" && t.hash.hasPrefix("sha256:") && t.phases.map(\.name) == ["check", "act"])
        let (plan, provenance) = try t.render(params: ["sku": "A1", "tags": ["x"]])
        let count = try #require(plan.step("count")).input, order = try #require(plan.step("order")).input
        #expect(count["sku"] == "A1" && count["threshold"] == 5 && count["tags"] == ["x"])
        #expect(order["text"] == "order A1 below 5")
        #expect(order["literal"] == "$${params.sku}", "an escaped reference stays for the run, which unescapes it")
        #expect(order["prev"] == "${steps.count.output.sku}")
        #expect(provenance.version == "1.2.0" && provenance.params["threshold"] == 5 && provenance.hash == t.hash)
        // Every way params can be wrong is named.
        for (params, field) in [(JSONValue.object([:]), "params"), (["sku": 3], "params.sku"), (["sku": "A", "extra": 1], "params.extra"),
                                (["sku": "A", "threshold": "five"], "params.threshold")] {
            do { _ = try t.render(params: params); Issue.record("\(params) was accepted") } catch {
                #expect(error.errors.contains { $0.field == field }, "\(params): \(error)")
            }
        }
    }

    @Test func aBrokenTemplateIsRefusedWithEveryProblemNamed() throws {
        let cases: [(String, String)] = [
            (#"{"name": "x", "version": "1", "plan": {"steps": [{"id": "a", "call": "echo.echo"}]}}"#, "version"),
            (#"{"name": "X!", "version": "1.0.0", "plan": {"steps": [{"id": "a", "call": "echo.echo"}]}}"#, "name"),
            (#"{"name": "x", "version": "1.0.0", "plan": {"steps": [{"id": "a", "call": "echo.echo", "input": {"v": "${params.nope}"}}]}}"#, "plan"),
            (#"{"name": "x", "version": "1.0.0", "phases": [{"name": "p", "steps": ["zz"]}], "plan": {"steps": [{"id": "a", "call": "echo.echo"}]}}"#, "phases[0].steps"),
            (#"{"name": "x", "version": "1.0.0", "role": "r", "plan": {"steps": [{"id": "a", "call": "echo.echo"}]}}"#, "role"),
            (#"{"name": "x", "version": "1.0.0", "params": {"type": 5}, "plan": {"steps": [{"id": "a", "call": "echo.echo"}]}}"#, "params"),
            (#"{"name": "x", "version": "1.0.0", "plan": {"steps": [{"id": "a", "call": "nodots"}]}}"#, "plan.steps[0].call"),
        ]
        for (text, field) in cases {
            let doc = try JSONValue.parse(text)
            do { _ = try PlanTemplate(document: doc); Issue.record("accepted: \(text)") } catch {
                #expect(error.errors.contains { $0.field == field }, "\(text): \(error)")
            }
        }
    }

    @Test func theLibraryStoresEveryVersionAndAChangedFileNeedsANewVersion() async throws {
        let dir = Fixtures.tempDir("templates")
        let nova = try await host(dir, templates: ["restock.json": Self.restock])
        let library = try #require(nova.templates)
        var report = await library.sync()
        #expect(report.created == ["restock@1.2.0"] && report.errors.isEmpty)
        // Same content again: nothing new. Changed content under the same version: refused, the stored version stays.
        report = await library.sync()
        #expect(report.created.isEmpty && report.unchanged == 1)
        Fixtures.write(Self.restock.replacingOccurrences(of: "Reorder stock.", with: "Changed."), to: dir + "/templates/restock.json")
        report = await library.sync()
        #expect(report.errors.count == 1 && report.errors[0].message.contains("new version"), "\(report.errors)")
        #expect(try await library.resolve(TemplateRef.parse("restock@1.2.0")).description == "Reorder stock.")
        // A new version beside it: both resolve, `@1` picks the newest 1.x.
        Fixtures.write(Self.restock.replacingOccurrences(of: "1.2.0", with: "1.3.0"), to: dir + "/templates/restock.json")
        report = await library.sync()
        #expect(report.created == ["restock@1.3.0"])
        #expect(try await library.resolve(TemplateRef.parse("restock@1")).version.description == "1.3.0")
        #expect(try await library.resolve(TemplateRef.parse("restock@1.2")).version.description == "1.2.0")
        #expect(try await library.list(name: "restock").count == 2)
        await #expect(throws: TemplateLookupError.self) { try await library.resolve(TemplateRef.parse("restock@3")) }
        await #expect(throws: TemplateLookupError.self) { try await library.resolve(TemplateRef.parse("nothere")) }
    }

    @Test func aTemplateRunRecordsTheExactVersionHashAndParams() async throws {
        let nova = try await host(Fixtures.tempDir("templates"))
        let t = try template(Self.restock)
        let (plan, provenance) = try t.render(params: ["sku": "B2"])
        var s = RunSubmission(plan: plan, principal: "uma", origin: "test")
        s.template = provenance
        let result = await nova.pipeline.execute(try await nova.pipeline.prepare(s))
        #expect(result.record.status == .succeeded)
        let doc = try #require(try await nova.episodes?.show(runId: result.record.runId)).document
        #expect(doc["template"]?["name"] == "restock" && doc["template"]?["version"] == "1.2.0")
        #expect(doc["template"]?["hash"]?.stringValue == t.hash && doc["template"]?["params"]?["sku"] == "B2")
        #expect(doc["template"]?["phases"]?[1]?["steps"] == ["order"])
    }

    static let child = """
        {"name": "child", "version": "1.0.0", "params": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
         "plan": {"steps": [{"id": "c1", "call": "echo.echo", "input": {"n": "${params.n}"}},
                            {"id": "c2", "call": "echo.echo", "input": {"twice": ["${steps.c1.output.n}", "${params.n}"]}}],
                  "output": "${steps.c2.output.twice}"}}
        """

    @Test func aTemplateStepIsASubRunNestedInTheParentChargedToItsBudget() async throws {
        let dir = Fixtures.tempDir("subrun")
        let policy = #"{"principals": {"uma": "user"}, "rules": [{"id": "all", "effect": "allow", "tools": ["*"]}], "budgets": [{"id": "per-run", "scope": "run", "calls": 4}]}"#
        let nova = try await host(dir, policy: policy, templates: ["child.json": Self.child])
        _ = await nova.syncTemplates()
        let parent = #"{"steps": [{"id": "first", "call": "echo.echo", "input": {"n": 7}}, {"id": "sub", "call": "template:child@1", "input": {"n": "${steps.first.output.n}"}}, {"id": "after", "call": "echo.echo", "input": {"got": "${steps.sub.output}"}}]}"#
        let r = try await run(nova, parent)
        // first (1) + child's two calls (2, 3) + after (4): within the run budget of 4.
        #expect(r.record.status == .succeeded, "\(r.record.error ?? "")")
        let sub = try #require(r.record.steps.first { $0.id == "sub" })
        #expect(sub.subrun?.record.template?.version == "1.0.0" && sub.subrun?.record.steps.map(\.id) == ["c1", "c2"])
        #expect(sub.output == [7, 7] && r.record.steps.last?.output?["got"] == [7, 7])
        let doc = try #require(try await nova.episodes?.show(runId: r.record.runId)).document
        #expect(doc["steps"]?[1]?["subrun"]?["steps"]?[1]?["output"]?["twice"] == [7, 7])
        #expect(doc["totals"]?["calls"] == 4, "the sub-run's calls count in the parent's totals")
        // One call more than the budget: the child's second call is denied, with the parent's budget named.
        let over = #"{"steps": [{"id": "a", "call": "echo.echo", "input": {}}, {"id": "b", "call": "echo.echo", "input": {}}, {"id": "c", "call": "echo.echo", "input": {}}, {"id": "sub", "call": "template:child", "depends_on": ["a", "b", "c"], "input": {"n": 1}}]}"#
        let denied = try await run(nova, over)
        #expect(denied.record.status == .denied)
        let deniedSub = try #require(denied.record.steps.last?.subrun?.record)
        #expect(deniedSub.steps[0].status == .succeeded && deniedSub.steps[1].status == .denied, "\(deniedSub.steps.map(\.status))")
        #expect(deniedSub.steps[1].reason?.contains("per-run") == true, "\(deniedSub.steps.map(\.reason))")
    }

    @Test func templateCyclesAndUnknownTemplatesAreRefusedBeforeAnythingRuns() async throws {
        let a = #"{"name": "cyc-a", "version": "1.0.0", "plan": {"steps": [{"id": "x", "call": "template:cyc-b"}]}}"#
        let b = #"{"name": "cyc-b", "version": "1.0.0", "plan": {"steps": [{"id": "y", "call": "echo.echo"}, {"id": "z", "call": "template:cyc-a@1"}]}}"#
        let nova = try await host(Fixtures.tempDir("cycle"), templates: ["a.json": a, "b.json": b])
        _ = await nova.syncTemplates()
        let cyclic = try Plan.parse(JSONValue.parse(#"{"steps": [{"id": "s", "call": "template:cyc-a"}]}"#))
        do {
            _ = try await nova.pipeline.prepare(RunSubmission(plan: cyclic, principal: "uma", origin: "test"))
            Issue.record("a cycle was accepted")
        } catch {
            #expect(error.errors.first?.step == "s" && error.description.contains("template cycle: cyc-a → cyc-b → cyc-a"), "\(error)")
        }
        let ghost = try Plan.parse(JSONValue.parse(#"{"steps": [{"id": "s", "call": "template:ghost@2"}]}"#))
        do {
            _ = try await nova.pipeline.prepare(RunSubmission(plan: ghost, principal: "uma", origin: "test"))
            Issue.record("an unknown template was accepted")
        } catch { #expect(error.errors.first?.field == "call" && error.description.contains("ghost"), "\(error)") }
    }

    @Test func foreachKeepsOrderBoundsParallelismAndFollowsOnError() async throws {
        let nova = try await host(Fixtures.tempDir("foreach"))
        let ok = try await run(nova, #"{"steps": [{"id": "list", "call": "echo.echo", "input": {"items": [30, 10, 50, 20, 40, 0]}}, {"id": "each", "call": "echo.sleep", "foreach": {"items": "${steps.list.output.items}", "parallelism": 2}, "input": {"ms": "${item}"}}]}"#)
        #expect(ok.record.status == .succeeded)
        let each = try #require(ok.record.steps.last)
        #expect(each.output == [["slept_ms": 30], ["slept_ms": 10], ["slept_ms": 50], ["slept_ms": 20], ["slept_ms": 40], ["slept_ms": 0]])
        #expect(each.items?.map(\.id) == (0..<6).map { "each[\($0)]" })
        // At most two calls overlapped (monotonic call intervals of the elements).
        let spans = (each.items ?? []).compactMap { $0.attempts.first }.map { ($0.startNanos, $0.endNanos) }
        // Sweep: +1 at each start, -1 at each end (an end before a start at the same instant).
        var events: [(at: Int64, delta: Int)] = []
        for (start, end) in spans { events.append((start, 1)); events.append((end, -1)) }
        events.sort { a, b in a.at != b.at ? a.at < b.at : a.delta < b.delta }
        var inFlight = 0, maxOverlap = 0
        for e in events { inFlight += e.delta; maxOverlap = max(maxOverlap, inFlight) }
        #expect(spans.count == 6 && maxOverlap <= 2, "\(spans)")
        // A failed element: `continue` records null and goes on; `fail` stops the step and skips the rest.
        let fail = try await run(nova, #"{"steps": [{"id": "each", "call": "echo.fail", "foreach": {"items": [1, 2, 3]}, "input": {}}]}"#)
        let f = try #require(fail.record.steps.first)
        #expect(fail.record.status == .failed && f.status == .failed)
        #expect(f.items?.map(\.status) == [.failed, .skipped, .skipped], "\(f.items?.map(\.status) ?? [])")
        let goOn = try await run(nova, #"{"steps": [{"id": "each", "call": "echo.echo", "on_error": "continue", "foreach": {"items": [{"v": 1}, 2, {"v": 3}]}, "input": {"v": "${item.v}", "i": "${index}"}}]}"#)
        let g = try #require(goOn.record.steps.first)
        #expect(goOn.record.status == .succeeded && g.output == [["v": 1, "i": 0], .null, ["v": 3, "i": 2]], "\(String(describing: g.output))")
        #expect(g.items?[1].status == .failed && g.items?[1].reason?.contains("item.v") == true)
        // `${item}` outside a foreach step, and a foreach over something that is not an array.
        #expect(throws: PlanErrors.self) { try Plan.parse(JSONValue.parse(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"v": "${item}"}}]}"#)) }
        let notArray = try await run(nova, #"{"steps": [{"id": "each", "call": "echo.echo", "foreach": {"items": "${inputs.x}"}, "input": {}}], "inputs": {"x": {"type": "object", "default": {"a": 1}}}}"#)
        #expect(notArray.record.steps[0].reason?.contains("must resolve to an array") == true)
    }
}
