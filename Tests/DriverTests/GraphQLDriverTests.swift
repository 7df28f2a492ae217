import Foundation
import Host
import JSON
import Testing

/// The graphql driver against a real GraphQL server (graphql-core on uvicorn,
/// Tests/servers/graphql_server.py).
@Suite("graphql driver")
struct GraphQLDriverTests {
    func host(_ gqlConfig: [String: JSONValue] = [:], gate: any CallGate = AllowAllGate()) async throws -> HostHarness {
        var config = try DriverFixtures.serverConfig()
        var g: [String: JSONValue] = ["endpoint": .string(try Servers.graphqlURL())]
        for (k, v) in gqlConfig { g[k] = v }
        config["graphql"] = .object(g)
        return try await HostHarness(config: config, gate: gate)
    }

    /// How many reorders the server recorded for `sku` (asked without policy).
    func reorderCount(_ sku: String) async throws -> Int? {
        let out = try await host().call("graphql.query", ["query": "query C($s: String!) { reorderCount(sku: $s) }", "variables": ["s": .string(sku)]]).value()
        return out["data"]?["reorderCount"]?.intValue
    }

    @Test func queryWithVariables() async throws {
        let out = try await host().call("graphql.query", [
            "query": "query Hello($n: String) { hello(name: $n) products { sku price } }", "variables": ["n": "nova"],
        ]).value()
        #expect(out["data"]?["hello"] == "hello, nova")
        #expect(out["data"]?["products"]?[0] == ["sku": "A-100", "price": 0.35])
        #expect(out["operation"] == ["type": "query", "name": "Hello"])
        #expect(out["partial"] == false && out["status"] == 200 && out["errors"] == nil)
        #expect(out["extensions"] == ["server": "nova-test-graphql"])
    }

    @Test func syntaxErrorsNeverReachTheNetwork() async throws {
        // The endpoint does not exist: a syntax error must be reported without trying it.
        let port = try Servers.closedPort()
        let h = try await host(["endpoint": .string("http://127.0.0.1:\(port)/graphql")])
        let r = try await h.call("graphql.query", ["query": "{ hello(name: ) }"])
        #expect(r.error?.kind == .invalidArgument)
        #expect(r.error?.code == "graphql_syntax")
        #expect(r.error?.message.contains("Syntax Error") == true || r.error?.message.contains("syntax") == true)
        // A valid document against the same endpoint does try, and fails to connect.
        let c = try await h.call("graphql.query", ["query": "{ hello }"])
        #expect(c.error?.code == "connection_failed")
    }

    @Test func documentsAreValidatedAgainstTheSchemaLocally() async throws {
        let h = try await host()
        let r = try await h.call("graphql.query", ["query": "{ hello noSuchField }"])
        #expect(r.error?.code == "graphql_validation")
        #expect(r.error?.message.contains("noSuchField") == true)
        let wrongArg = try await h.call("graphql.query", ["query": "{ user(idd: 1) { id } }"])
        #expect(wrongArg.error?.code == "graphql_validation")
        // Without local validation the server reports the same problem as a GraphQL error.
        let remote = try await host(["validate": false]).call("graphql.query", ["query": "{ hello noSuchField }"])
        #expect(remote.error?.code == "graphql_errors")
        #expect(remote.error?.message.contains("noSuchField") == true)
    }

    @Test func partialDataComesWithItsErrors() async throws {
        let out = try await host().call("graphql.query", ["query": "{ users { id name secretNote } }"]).value()
        #expect(out["partial"] == true)
        let users = try #require(out["data"]?["users"]?.arrayValue)
        #expect(users.count == 3)
        #expect(users[0]["secretNote"] == "note for Ada")
        #expect(users[1]["secretNote"] == .null)
        let errors = try #require(out["errors"]?.arrayValue)
        #expect(errors.count == 1)
        #expect(errors[0]["message"] == "secretNote of user 2 is classified")
        #expect(errors[0]["path"] == ["users", 1, "secretNote"])
        #expect(errors[0]["locations"] == [["line": 1, "column": 19]])
        // A failing nullable field next to a good one.
        let boom = try await host().call("graphql.query", ["query": "{ hello boom }"]).value()
        #expect(boom["data"] == ["hello": "hello, world", "boom": nil])
        #expect(boom["errors"]?[0]?["path"] == ["boom"])
    }

    @Test func errorsWithoutDataFailTheCall() async throws {
        let r = try await host().call("graphql.query", ["query": "{ boomRequired }"])
        #expect(r.step.status == .failed)
        #expect(r.error?.code == "graphql_errors")
        #expect(r.error?.kind == .tool)
        #expect(r.error?.message.contains("boom: this field always fails [at boomRequired]") == true)
    }

    @Test func mutationsRunAndAreMarked() async throws {
        let h = try await host()
        let sku = uniqueName("SKU")
        let out = try await h.call("graphql.query", [
            "query": "mutation Reorder($sku: String!, $q: Int!) { reorder(sku: $sku, quantity: $q) { sku quantity } }",
            "variables": ["sku": .string(sku), "q": 25],
        ]).value()
        #expect(out["operation"] == ["type": "mutation", "name": "Reorder"])
        #expect(out["data"]?["reorder"] == ["sku": .string(sku), "quantity": 25])
        #expect(try await reorderCount(sku) == 1)
    }

    @Test func mutationDeniedByPolicyIsNeverSent() async throws {
        let policy = PolicyEngine(profile: try PolicyProfile.load(DriverFixtures.root + "/configs/policy.default.json"))
        let h = try await host(gate: policy)
        let sku = uniqueName("SKU")
        let mutation: JSONValue = ["query": .string("mutation { reorder(sku: \"\(sku)\", quantity: 1) { id } }")]
        let denied = try await h.call("graphql.query", mutation, principal: "local")
        #expect(denied.step.status == .denied)
        #expect(denied.step.attempts.first?.decision?.allowed == false)
        #expect(try await reorderCount(sku) == 0)  // the mutation never reached the server
        let asAdmin = try await h.call("graphql.query", mutation, principal: "admin")
        #expect(asAdmin.succeeded)
        #expect(try await reorderCount(sku) == 1)
    }

    @Test func operationSelection() async throws {
        let h = try await host()
        let doc = "query A { hello(name: \"a\") } query B { hello(name: \"b\") }"
        let none = try await h.call("graphql.query", ["query": .string(doc)])
        #expect(none.error?.code == "graphql_operation_name_required")
        let b = try await h.call("graphql.query", ["query": .string(doc), "operationName": "B"]).value()
        #expect(b["data"]?["hello"] == "hello, b" && b["operation"]?["name"] == "B")
        let missing = try await h.call("graphql.query", ["query": .string(doc), "operationName": "C"])
        #expect(missing.error?.code == "graphql_unknown_operation")
        let sub = try await h.call("graphql.query", ["query": "subscription S { hello }"])
        #expect(sub.error?.kind == .unsupported)
    }

    @Test func schemaByIntrospection() async throws {
        let out = try await host().call("graphql.schema", ["include_introspection": true]).value()
        #expect(out["query_type"] == "Query" && out["mutation_type"] == "Mutation" && out["subscription_type"] == .null)
        let sdl = try #require(out["sdl"]?.stringValue)
        #expect(sdl.contains("type Query {"))
        #expect(sdl.contains("reorder(sku: String!, quantity: Int!): Reorder!"))
        #expect(sdl.contains("hello(name: String = \"world\"): String!"))
        #expect((out["type_count"]?.intValue ?? 0) >= 8)
        #expect(out["introspection"]?["types"] != nil)
    }

    @Test func httpErrorsTimeoutsAndRefusedConnections() async throws {
        let url = try Servers.graphqlURL()
        let broken = try await host(["endpoint": .string(url.replacingOccurrences(of: "/graphql", with: "/broken")), "validate": false])
        let r = try await broken.call("graphql.query", ["query": "{ hello }"])
        #expect(r.error?.code == "http_status")
        #expect(r.error?.message.contains("500") == true)
        let slow = try await host().call("graphql.query", ["query": "{ slow(ms: 5000) }", "timeout_ms": 400])
        #expect(slow.error?.kind == .deadline)
        let byStep = try await host().call("graphql.query", ["query": "{ slow(ms: 5000) }"], timeoutMs: 400)
        #expect(byStep.error?.kind == .deadline)
        let port = try Servers.closedPort()
        let refused = try await host(["endpoint": .string("http://127.0.0.1:\(port)/graphql")]).call("graphql.query", ["query": "{ hello }"])
        #expect(refused.error?.code == "connection_failed")
    }

    @Test func configuredHeadersAreSentButNeverShown() async throws {
        LogCapture.install()
        // The GraphQL server ignores headers; what matters is that the secret reaches neither
        // the output, nor the recorded input, nor the logs.
        let token = "Bearer gql-\(UUID().uuidString)"
        let r = try await host(["headers": ["Authorization": .string(token)]]).call("graphql.query", ["query": "mutation { reorder(sku: \"HDR\", quantity: 1) { id } }"])
        #expect(r.succeeded)
        #expect(!r.step.json.text.contains(token))
        #expect(!LogCapture.all().map(\.message).joined().contains(token))
    }
}
