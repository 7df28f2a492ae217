import Foundation
import Host
import JSON
import Testing

/// Everything together: the three Swift drivers and the C example in one process, and the
/// example plan http → postgres → graphql, in-process and through the CLI (which finds the
/// drivers as files in a drivers directory and loads them like any deployment).
@Suite("drivers together")
struct AllDriversTests {
    @Test func fourDriversLoadInOneProcess() async throws {
        // The three Swift drivers and the C example, opened by the host's loader in this process
        // (each a separate image with its own copy of its dependencies), used concurrently.
        let libraries = try await Libraries.get()
        for name in ["echo", "http", "postgres", "graphql"] {
            let lib = try #require(libraries[name])
            #expect(lib.manifest.name == name)
            #expect(lib.abiVersion == ABIVersion(major: 1, minor: 0))
        }
        let registry = try await HostHarness().registry
        let base = try Servers.httpURL()
        async let echo = registry.resolve(toolId: "echo.echo").driver.call(ToolCallRequest(tool: "echo", input: Array(#"{"x":1}"#.utf8)))
        async let http = registry.resolve(toolId: "http.request").driver.call(ToolCallRequest(tool: "request", input: JSONValue.object(["url": .string(base + "/json")]).serializedBytes()))
        async let pg = registry.resolve(toolId: "postgres.query").driver.call(ToolCallRequest(tool: "query", input: Array(#"{"sql":"SELECT 41 + 1 AS answer"}"#.utf8)))
        async let gql = registry.resolve(toolId: "graphql.query").driver.call(ToolCallRequest(tool: "query", input: Array(#"{"query":"{ hello }"}"#.utf8)))
        let (e, h, p, g) = try await (echo, http, pg, gql)
        #expect(try e.outputJSON() == ["x": 1])
        #expect(try h.outputJSON()["body"]?["hello"] == "world")
        #expect(try p.outputJSON()["rows"] == [["answer": 42]])
        #expect(try g.outputJSON()["data"] == ["hello": "hello, world"])
        for name in ["echo", "http", "postgres", "graphql"] { #expect(registry.loadCount(name) == 1) }
        #expect(libraries["http"]?.manifest.tool(named: "request")?.annotations.openWorldHint == true)
        #expect(libraries["postgres"]?.manifest.tool(named: "execute")?.annotations.destructiveHint == true)
        #expect(libraries["postgres"]?.manifest.tool(named: "query")?.annotations.readOnlyHint == true)
        #expect(libraries["graphql"]?.manifest.tool(named: "schema")?.annotations.readOnlyHint == true)
        // Both graphql tools reach an external endpoint (issue 10.15).
        #expect(libraries["graphql"]?.manifest.tool(named: "query")?.annotations.openWorldHint == true)
        #expect(libraries["graphql"]?.manifest.tool(named: "schema")?.annotations.openWorldHint == true)
        // What each built-in tool lets policy conditions read (issue 11.4).
        #expect(libraries["http"]?.manifest.tool(named: "request")?.policyInputs == PolicyInputs([.url: "/url"]))
        #expect(libraries["postgres"]?.manifest.tool(named: "query")?.policyInputs == PolicyInputs([.allowWrite: "/allow_write"]))
        #expect(libraries["postgres"]?.manifest.tool(named: "execute")?.policyInputs == PolicyInputs())
        #expect(libraries["graphql"]?.manifest.tool(named: "query")?.policyInputs == PolicyInputs([.graphqlDocument: "/query"]))
    }

    @Test func manifestsDeclareSchemasAndSecrets() async throws {
        let registry = try await HostHarness().registry
        for id in ["http.request", "postgres.query", "postgres.execute", "postgres.schema", "graphql.query", "graphql.schema"] {
            let (_, tool) = try await registry.resolve(toolId: id)
            #expect(tool.inputSchema["type"] == "object", "\(id)")
            #expect(tool.outputSchema?["type"] == "object", "\(id)")
            #expect(!tool.description.isEmpty)
        }
        let (_, http) = try await registry.resolve(toolId: "http.request")
        #expect(http.secretInputFields == ["secret_headers"])
    }

    static func restockPlan() throws -> Plan { try PlanLoader.load(path: DriverFixtures.root + "/examples/restock.plan.json") }

    static let expectedOutput: JSONValue = [
        "checked": ["A-100", "B-200", "C-300", "D-400"],
        "low_stock": [["sku": "B-200", "warehouse": "north", "quantity": 3], ["sku": "C-300", "warehouse": "south", "quantity": 0]],
        "suppliers": [["sku": "B-200", "supplier": "Bolt & Co", "leadTimeDays": 5], ["sku": "C-300", "supplier": "Clampworks", "leadTimeDays": 7]],
    ]

    /// The example plan under the default policy, as the `local` principal (role user).
    @Test func examplePlanRunsUnderTheDefaultPolicy() async throws {
        let plan = try Self.restockPlan()
        let policy = PolicyEngine(profile: try PolicyProfile.load(DriverFixtures.root + "/configs/policy.default.json"))
        let runner = try await HostHarness(gate: policy).runner
        #expect(await runner.validate(plan).isEmpty)
        let inputs = try PlanRunner.bindInputs(plan, given: ["catalog_url": .string(try Servers.httpURL() + "/catalog")])
        let record = await runner.run(plan, inputs: inputs, principal: "local", runId: RunId.make())
        #expect(record.status == .succeeded, "\(record.error ?? "")")
        #expect(record.steps.map(\.status) == [.succeeded, .succeeded, .succeeded])
        #expect(record.steps.allSatisfy { $0.attempts.first?.decision?.allowed == true })
        #expect(record.output == Self.expectedOutput)
        // A threshold nothing is below: the GraphQL step is skipped by its `when`.
        let none = await runner.run(plan, inputs: try PlanRunner.bindInputs(plan, given: ["catalog_url": .string(try Servers.httpURL() + "/catalog"), "threshold": 0]),
                                    principal: "local", runId: RunId.make())
        #expect(none.status == .succeeded)
        #expect(none.steps.map(\.status) == [.succeeded, .succeeded, .skipped])
        #expect(none.output?["low_stock"] == [])
    }

    /// The same plan through the CLI, configured by environment variables, as the README shows.
    @Test func examplePlanRunsThroughTheCLI() async throws {
        let binary = DriverFixtures.binDir + "/nova-host"
        try #require(FileManager.default.isExecutableFile(atPath: binary), "\(binary) is missing: build the package first")
        let arguments = ["run", "examples/restock.plan.json", "--input", "catalog_url=\(try Servers.httpURL())/catalog", "--json"]
        var env = ProcessInfo.processInfo.environment
        env["NOVA_DRIVERS_DIR"] = try await DriverFixtures.driversDirectory()
        env["NOVA_DATA_DIR"] = DriverFixtures.tempDir("nova-data")
        env["NOVA_POLICY"] = DriverFixtures.root + "/configs/policy.default.json"
        env["NOVA_HTTP_ALLOW_CIDRS"] = "127.0.0.0/8"
        env["NOVA_PG_DSN"] = try Servers.postgresDSN()
        env["NOVA_GRAPHQL_ENDPOINT"] = try Servers.graphqlURL()
        let environment = env
        // The child runs for seconds: ProcessRunner waits on a thread of its own, not the pool.
        let r = try await ProcessRunner.run(binary, arguments, environment: environment, cwd: DriverFixtures.root)
        #expect(r.status == 0, "\(r)")
        let json = try JSONValue.parse(r.stdout)
        #expect(json["status"] == "succeeded")
        #expect(json["output"] == Self.expectedOutput)
        // The DSN's password is nowhere in what the CLI printed.
        let password = try Servers.postgresPassword()
        #expect(!r.stdout.contains(password) && !r.stderr.contains(password))
    }

    /// Issue 10.24: a driver that is not configured yet can be inspected (its manifest comes
    /// from `describe`, which needs no instance); the output says the instance is not configured.
    @Test func unconfiguredDriversCanBeInspected() async throws {
        let binary = DriverFixtures.binDir + "/nova-host"
        let drivers = try await DriverFixtures.driversDirectory()
        for (name, tools, missing) in [("postgres", ["postgres.query", "postgres.execute", "postgres.schema"], "no DSN"),
                                       ("graphql", ["graphql.query", "graphql.schema"], "no endpoint")] {
            var env = ProcessInfo.processInfo.environment
            env["NOVA_PG_DSN"] = nil
            env["NOVA_GRAPHQL_ENDPOINT"] = nil
            env["NOVA_DRIVER_CONFIG"] = nil
            let environment = env
            let r = try await ProcessRunner.run(binary, ["drivers", "inspect", name, "--drivers", drivers, "--data", DriverFixtures.tempDir("inspect")],
                                                environment: environment, cwd: DriverFixtures.tempDir("inspect-cwd"))  // no configs/ here
            let (status, stdout, stderr) = (r.status, r.stdout, r.stderr)
            #expect(status == 0, "\(name): \(stdout)\n\(stderr)")
            for tool in tools { #expect(stdout.contains(tool), "\(name): \(stdout)") }
            #expect(stdout.contains("instance: not configured") && stdout.contains(missing), "\(name): \(stdout)")
        }
    }
}
