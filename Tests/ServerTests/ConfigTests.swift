import Foundation
import Host
import HostServer
import JSON
import Testing

/// The server configuration file, its schema, and the tool-visibility rule.
@Suite struct ConfigTests {
    typealias F = ServerFixtures

    @Test func embeddedSchemaMatchesTheFile() throws {
        let file = try String(contentsOfFile: F.root + "/schemas/host-config.schema.json", encoding: .utf8)
        #expect(try JSONValue.parse(file) == JSONValue.parse(HostConfigSchema.text))
        #expect(HostConfigSchema.compiled != nil)
    }

    @Test func exampleConfigLoads() throws {
        let c = try HostConfig.load(path: F.root + "/configs/host.example.json",
                                    environment: ["NOVA_JWT_HS256_SECRET": "an-example-secret-that-is-long-enough-32"])
        #expect(c.host == "127.0.0.1")
        #expect(c.port == 8787)
        #expect(c.apiKeys.count == 3)
        #expect(c.jwt?.keys.first?.algorithm == .hs256)
        #expect(c.corsOrigins == ["http://localhost:3000"])
        #expect(!c.metricsPublic)
        // The example's keys agree with the default policy.
        let profile = try PolicyProfile.load(F.root + "/configs/policy.default.json")
        #expect(c.problems(against: profile).isEmpty)
    }

    @Test func defaultsBindLoopback() {
        let c = HostConfig()
        #expect(c.host == "127.0.0.1")
        #expect(c.bindsLoopback)
        #expect(c.apiKeys.isEmpty && c.jwt == nil)
        #expect(c.eventLoopThreads == nil)
    }

    @Test func eventLoopThreadsAreRead() throws {
        #expect(try HostConfig.parse(["event_loop_threads": 3], environment: [:]).eventLoopThreads == 3)
    }

    @Test func invalidConfigsAreRejectedWithTheField() {
        let cases: [(JSONValue, String)] = [
            (["listen": ["port": 70000]], "listen.port"),
            (["api_keys": [["id": "a", "sha256": "nothex", "principal": "p", "role": "user"]]], "sha256"),
            (["unknown": true], "unknown"),
            (["jwt": ["issuer": "i", "audience": "a", "keys": [["alg": "none", "secret": .string(String(repeating: "s", count: 40))]]]], "alg"),
            (["jwt": ["issuer": "i", "audience": "a", "keys": [["alg": "HS256", "secret": "short"]]]], "jwt.keys"),
            (["jwt": ["issuer": "i", "audience": "a", "keys": [["alg": "HS256", "secret_env": "NOVA_TEST_UNSET_VAR"]]]], "NOVA_TEST_UNSET_VAR"),
            (["jwt": ["issuer": "i", "audience": "a", "keys": [["alg": "RS256", "secret": .string(String(repeating: "s", count: 40))]]]], "jwt.keys"),
            (["api_keys": [["id": "a", "sha256": .string(String(repeating: "a", count: 64)), "principal": "p", "role": "user"],
                           ["id": "a", "sha256": .string(String(repeating: "b", count: 64)), "principal": "q", "role": "user"]]], "used twice"),
            (["body_limit_bytes": 10], "body_limit_bytes"),
            (["event_loop_threads": 0], "event_loop_threads"),
            (["cors": ["allowed_origins": ["*"]]], "cors.allowed_origins"),
        ]
        for (json, mention) in cases {
            do {
                _ = try HostConfig.parse(json, environment: [:])
                Issue.record("accepted \(json)")
            } catch {
                #expect(error.message.contains(mention), "\(error.message) should mention \(mention)")
            }
        }
    }

    @Test func keyFilesResolveAgainstTheConfigDirectory() throws {
        let dir = F.tempDir("cfg")
        try TestKeys.rsaPublic.write(toFile: dir + "/rs.pem", atomically: true, encoding: .utf8)
        try "a-secret-from-a-file-0123456789abcdef\n".write(toFile: dir + "/hs.secret", atomically: true, encoding: .utf8)
        let json = """
        { "jwt": { "issuer": "i", "audience": "a", "keys": [
            { "kid": "r", "alg": "RS256", "public_key_file": "rs.pem" },
            { "kid": "h", "alg": "HS256", "secret_file": "hs.secret" } ] } }
        """
        try json.write(toFile: dir + "/host.json", atomically: true, encoding: .utf8)
        let c = try HostConfig.load(path: dir + "/host.json")
        #expect(c.jwt?.keys[0].publicKeyPEM?.contains("BEGIN PUBLIC KEY") == true)
        #expect(c.jwt?.keys[1].secret == Array("a-secret-from-a-file-0123456789abcdef".utf8))
    }

    /// `paths` (what `nova-host init` writes) resolve against the file's directory; absent
    /// members stay nil so flags, environment and defaults decide.
    @Test func pathsResolveAgainstTheConfigDirectory() throws {
        let c = try HostConfig.parse(JSONValue.parse(#"{"paths": {"drivers": "drivers", "policy": "/etc/nova/policy.json", "data": ".nova", "templates": "templates"}}"#),
                                     baseDirectory: "/srv/project")
        #expect(c.paths == HostConfig.Paths(drivers: "/srv/project/drivers", policy: "/etc/nova/policy.json", data: "/srv/project/.nova",
                                            templates: "/srv/project/templates"))
        #expect(HostConfig().paths == HostConfig.Paths())
        #expect(throws: HostConfigError.self) { _ = try HostConfig.parse(JSONValue.parse(#"{"paths": {"driver": "x"}}"#)) }
    }

    @Test func toolVisibilityFollowsRuleOrder() throws {
        let profile = try PolicyProfile(json: [
            "roles": ["user", "ops"],
            "rules": [
                ["id": "deny-write", "effect": "deny", "roles": ["user"], "tools": ["db.write"]],
                ["id": "deny-some-hosts", "effect": "deny", "roles": ["user"], "tools": ["http.*"], "conditions": ["http_hosts": ["*.evil"]]],
                ["id": "http", "effect": "allow", "roles": ["user"], "tools": ["http.request"], "conditions": ["http_hosts": ["api.example.com"]]],
                ["id": "reads", "effect": "allow", "roles": ["user"], "tools": ["db.*"], "conditions": ["read_only": true]],
                ["id": "ops", "effect": "allow", "roles": ["ops"], "principals": ["olga"], "tools": ["*"]],
            ],
        ])
        let ro = ToolAnnotations(readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false)
        let rw = ToolAnnotations(readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true)
        #expect(!ToolGateway.mayUse(profile, role: "user", principal: "u", tool: "db.write", annotations: rw))
        #expect(ToolGateway.mayUse(profile, role: "user", principal: "u", tool: "db.read", annotations: ro))
        #expect(!ToolGateway.mayUse(profile, role: "user", principal: "u", tool: "db.drop", annotations: rw))
        #expect(ToolGateway.mayUse(profile, role: "user", principal: "u", tool: "http.request", annotations: rw, policyInputs: PolicyInputs([.url: "/url"])))
        // A conditional allow over an input the tool does not declare can never apply.
        #expect(!ToolGateway.mayUse(profile, role: "user", principal: "u", tool: "http.request", annotations: rw))
        #expect(!ToolGateway.mayUse(profile, role: "user", principal: "u", tool: "http.other", annotations: rw))
        #expect(ToolGateway.mayUse(profile, role: "ops", principal: "olga", tool: "x.y", annotations: rw))
        #expect(!ToolGateway.mayUse(profile, role: "ops", principal: "oscar", tool: "x.y", annotations: rw))
    }
}
