import Foundation
import Host
import JSON
import Reports
import Testing

/// The status report on a fixed set of runs made through the real pipeline: three succeed, one
/// is denied by a rule, one fails at a step.
@Suite struct ReportTests {
    static let policy = """
    { "roles": { "user": {} }, "principals": { "local": "user" },
      "rules": [
        { "id": "no-version", "effect": "deny", "roles": ["user"], "tools": ["echo.version"], "reason": "versions are private" },
        { "id": "echo-allowed", "effect": "allow", "roles": ["user"], "tools": ["echo.echo", "echo.fail"] } ] }
    """

    static func plan(_ json: String) throws -> Plan { try Plan.parse(try JSONValue.parse(json)) }

    @Test func reportContentOnAFixedSetOfRuns() async throws {
        let dir = Fixtures.tempDir("report")
        defer { TestPaths.remove(dir) }
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        try Fixtures.buildEcho(into: dir + "/drivers")
        Fixtures.write(Self.policy, to: dir + "/policy.json")
        let log = try await EpisodeLog.open(dataDirectory: dir + "/data")
        let host = try NovaHost(paths: HostPaths.resolve(drivers: dir + "/drivers", data: dir + "/data", policy: dir + "/policy.json", environment: [:]),
                                episodes: log)
        let ok = try Self.plan(#"{"name": "ok", "steps": [{"id": "a", "call": "echo.echo", "input": {"n": 1}}, {"id": "b", "call": "echo.echo", "input": {"n": 2}}]}"#)
        let denied = try Self.plan(#"{"name": "peek", "steps": [{"id": "v", "call": "echo.version", "input": {}}]}"#)
        let broken = try Self.plan(#"{"name": "broken", "steps": [{"id": "f", "call": "echo.fail", "input": {}}]}"#)
        var ids: [String: [String]] = [:]
        for (plan, expected) in [(ok, RunStatus.succeeded), (ok, .succeeded), (ok, .succeeded), (denied, .denied), (broken, .failed)] {
            let r = await host.run(plan, inputs: [:], principal: "local")
            #expect(r.record.status == expected, "\(r.record.json.serialized())")
            #expect(r.episode != nil, "\(r.episodeError ?? "")")
            ids[plan.name, default: []].append(r.record.runId)
        }
        await host.registry.shutdown()
        let agents = try #require(log.store.agentStore)
        try await agents.insertAgent(Agent(name: "scout", principal: "local"))

        let report = try await StatusReportBuilder(log: log).build(window: "24h")
        #expect(report.totalRuns == 5)
        #expect(report.runsByStatus == ["succeeded": 3, "denied": 1, "failed": 1])
        #expect(report.successRate == 0.6)
        #expect(report.denials.map(\.rule) == ["no-version"])
        #expect(report.denials.first?.count == 1)
        #expect(report.denials.first?.tools == ["echo.version"])
        #expect(report.denials.first?.exampleRuns == ids["peek"])
        let tools = Dictionary(uniqueKeysWithValues: report.tools.map { ($0.tool, $0) })
        #expect(tools["echo.echo"]?.calls == 6)
        #expect(tools["echo.echo"]?.errors == 0)
        #expect(tools["echo.fail"]?.calls == 1)
        #expect(tools["echo.fail"]?.errors == 1)
        #expect(tools["echo.version"] == nil, "a denied call is not a call")
        for t in report.tools { #expect(t.duration.p50Ms <= t.duration.p95Ms && t.duration.p95Ms <= t.duration.maxMs && t.duration.p95Ms > 0) }
        let plans = Dictionary(uniqueKeysWithValues: report.plans.map { ($0.plan, $0) })
        #expect(plans["ok"]?.runs == 3 && plans["ok"]?.succeeded == 3)
        #expect(plans["ok"].map { $0.duration.p50Ms <= $0.duration.p95Ms && $0.duration.count == 3 } == true)
        #expect(report.durations.p50Ms <= report.durations.p95Ms)
        #expect(report.budgets.map(\.principal) == ["local"])
        #expect(report.budgets.first?.calls == 7)
        #expect(report.errors.count == 2)
        #expect(report.errors.contains { $0.message.hasPrefix("step 'v' denied by policy") && $0.exampleRuns == ids["peek"] })
        #expect(report.errors.contains { $0.message.contains("echo.fail always fails") && $0.exampleRuns == ids["broken"] })
        #expect(report.agents.map(\.name) == ["scout"] && report.agents.first?.status == "active")
        #expect(report.jobsByState?["dead"] == 0 && report.dlqDepth == 0)
        #expect(report.timeline.count == 24 && report.timeline.map(\.runs).reduce(0, +) == 5)
        #expect(report.timeline.last?.unsuccessful == 2)

        // The JSON form carries the same numbers.
        let json = report.json
        #expect(json["runs"]?["total"] == 5)
        #expect(json["runs"]?["success_rate"] == 0.6)
        #expect(json["denials"]?[0]?["rule"] == "no-version")
        #expect(json["jobs"]?["dlq_depth"] == 0)

        // An agent's report: its principal's runs; an unknown agent is an error.
        let scout = try await StatusReportBuilder(log: log).build(window: "1h", agent: "scout")
        #expect(scout.totalRuns == 5 && scout.principal == "local" && scout.agents.count == 1)
        await #expect(throws: ReportError.self) { try await StatusReportBuilder(log: log).build(window: "24h", agent: "nobody") }
        await #expect(throws: ReportError.self) { try await StatusReportBuilder(log: log).build(window: "yesterday") }
        // Another principal's report is empty.
        #expect(try await StatusReportBuilder(log: log).build(window: "24h", principal: "someone").totalRuns == 0)

        // Renderers: Markdown tables, self-contained HTML.
        let md = StatusReportRenderer.markdown(report)
        #expect(md.contains("5 runs, success rate 60.0%"), "\(md)")
        #expect(md.contains("| no-version | 1 | echo.version |"), "\(md)")
        #expect(md.contains("| echo.echo | 6 | 0 |"), "\(md)")
        let html = StatusReportRenderer.html(report)
        #expect(html.contains("<svg") && html.contains("<polyline") && !html.contains("<script") && !html.contains("src="))

        // The CLI reads the same data directory.
        let cli = try await ProcessRunner.run(TestPaths.novaHost, ["report", "--since", "24h", "--format", "json", "--data", dir + "/data"])
        #expect(cli.status == 0, "\(cli)")
        let cliJSON = try JSONValue.parse(cli.stdout)
        #expect(cliJSON["runs"]?["by_status"]?["succeeded"] == 3)
        #expect(cliJSON["denials"]?[0]?["rule"] == "no-version")
        let cliMd = try await ProcessRunner.run(TestPaths.novaHost, ["report", "--format", "md", "--agent", "scout", "--data", dir + "/data"])
        #expect(cliMd.status == 0 && cliMd.stdout.contains("## Denials by rule"), "\(cliMd)")
        #expect(try await ProcessRunner.run(TestPaths.novaHost, ["report", "--since", "soon", "--data", dir + "/data"]).status == 2)
        #expect(try await ProcessRunner.run(TestPaths.novaHost, ["report", "--agent", "nobody", "--data", dir + "/data"]).status == 2)
    }

    @Test func windowsAndPercentiles() {
        #expect(ReportWindow.milliseconds("24h") == 86_400_000)
        #expect(ReportWindow.milliseconds("30m") == 1_800_000)
        #expect(ReportWindow.milliseconds("2w") == 1_209_600_000)
        #expect(ReportWindow.milliseconds("0h") == nil && ReportWindow.milliseconds("h") == nil && ReportWindow.milliseconds("400d") == nil)
        let d = DurationStats((1...100).map(Double.init))
        #expect(d.p50Ms == 50 && d.p95Ms == 95 && d.maxMs == 100 && d.count == 100)
        #expect(DurationStats([]).p95Ms == 0)
    }
}
