import Foundation
import Host
import JSON
import Testing

/// The http driver against the real HTTP test server (Tests/servers/http_server.py).
@Suite("http driver")
struct HTTPDriverTests {
    func host(_ httpConfig: JSONValue? = nil, gate: any CallGate = AllowAllGate()) async throws -> HostHarness {
        var config = try DriverFixtures.serverConfig()
        if let httpConfig { config["http"] = httpConfig }
        return try await HostHarness(config: config, gate: gate)
    }

    @Test func getJSON() async throws {
        let base = try Servers.httpURL()
        let out = try await host().call("http.request", ["url": .string(base + "/json")]).value()
        #expect(out["status"] == 200)
        #expect(out["ok"] == true)
        #expect(out["body_encoding"] == "json")
        #expect(out["body"] == ["hello": "world", "n": 42, "items": [1, 2, 3], "nested": ["ok": true]])
        #expect(out["address"] == "127.0.0.1")
        #expect(out["attempts"] == 1)
        #expect(out["headers"]?["content-type"] == "application/json")
        #expect((out["elapsed_ms"]?.doubleValue ?? -1) >= 0)
    }

    @Test func postWithQueryHeadersAndSecrets() async throws {
        LogCapture.install()
        let base = try Servers.httpURL()
        let secret = "sk-live-\(UUID().uuidString)"
        let bearer = "Bearer tok-\(UUID().uuidString)"
        let r = try await host().call("http.request", [
            "method": "POST", "url": .string(base + "/echo?fixed=1"),
            "query": ["q": "a b&c", "list": [1, 2], "flag": true],
            "headers": ["X-Trace": "t-1", "Authorization": .string(bearer)],
            "secret_headers": ["X-Custom-Secret-Key": .string(secret)],
            "body": ["name": "nova", "n": 3],
        ])
        let out = try r.value()
        let echo = try #require(out["body"])
        #expect(echo["method"] == "POST")
        #expect(echo["json"] == ["name": "nova", "n": 3])
        #expect(echo["query"] == ["fixed": ["1"], "q": ["a b&c"], "list": ["1", "2"], "flag": ["true"]])
        #expect(echo["headers"]?["x-trace"] == "t-1")
        #expect(echo["headers"]?["content-type"] == "application/json")
        #expect(echo["headers"]?["x-custom-secret-key"]?.stringValue == secret)  // it was sent
        // …but neither secret is in the recorded input (what episodes store) nor in any log.
        let recorded = try #require(r.step.attempts.first?.input)
        #expect(recorded["secret_headers"] == "[REDACTED]")
        #expect(recorded["headers"]?["Authorization"] == "[REDACTED]")
        #expect(recorded["headers"]?["X-Trace"] == "t-1")
        #expect(!recorded.text.contains(secret) && !recorded.text.contains(bearer))
        let logs = LogCapture.all().map(\.message).joined(separator: "\n")
        #expect(!logs.contains(secret) && !logs.contains(bearer))
    }

    @Test func textBinaryAndTextBodies() async throws {
        let base = try Servers.httpURL()
        let h = try await host()
        let text = try await h.call("http.request", ["url": .string(base + "/text")]).value()
        #expect(text["body"] == "hello, text")
        #expect(text["body_encoding"] == "text")
        let bin = try await h.call("http.request", ["url": .string(base + "/binary")]).value()
        #expect(bin["body_encoding"] == "base64")
        #expect(Data(base64Encoded: bin["body"]?.stringValue ?? "") == Data((0...255).map { UInt8($0) }))
        let sent = try await h.call("http.request", ["method": "PUT", "url": .string(base + "/echo"), "body": "plain words"]).value()
        #expect(sent["body"]?["body"] == "plain words")
        #expect(sent["body"]?["headers"]?["content-type"] == "text/plain; charset=utf-8")
        let head = try await h.call("http.request", ["method": "HEAD", "url": .string(base + "/json")]).value()
        #expect(head["status"] == 200 && head["body"] == .null && head["body_encoding"] == "empty")
    }

    @Test func httpErrorStatusIsAResultUnlessAsked() async throws {
        let base = try Servers.httpURL()
        let h = try await host()
        let nf = try await h.call("http.request", ["url": .string(base + "/status/404")]).value()
        #expect(nf["status"] == 404 && nf["ok"] == false)
        let failed = try await h.call("http.request", ["url": .string(base + "/status/404"), "fail_on_http_error": true])
        #expect(failed.step.status == .failed)
        #expect(failed.error?.code == "http_status" && failed.error?.kind == .tool)
    }

    @Test func retriesIdempotentRequestsOn5xx() async throws {
        let base = try Servers.httpURL()
        let h = try await host()
        let key = uniqueName("flaky")
        let out = try await h.call("http.request", ["url": .string("\(base)/flaky/\(key)?fail=2&status=503"), "retries": 3]).value()
        #expect(out["status"] == 200)
        #expect(out["attempts"] == 3)
        #expect(out["body"] == ["attempts": 3])
        let count = try await h.call("http.request", ["url": .string("\(base)/count/\(key)")]).value()
        #expect(count["body"] == ["count": 3])
        // Exhausted: the last 5xx is returned, with the attempts made.
        let key2 = uniqueName("flaky")
        let exhausted = try await h.call("http.request", ["url": .string("\(base)/flaky/\(key2)?fail=5&status=502"), "retries": 1]).value()
        #expect(exhausted["status"] == 502 && exhausted["attempts"] == 2)
    }

    @Test func nonIdempotentRequestsAreNotRetried() async throws {
        let base = try Servers.httpURL()
        let h = try await host()
        let key = uniqueName("post")
        let out = try await h.call("http.request", ["method": "POST", "url": .string("\(base)/flaky/\(key)?fail=1&status=503"), "body": [:], "retries": 3]).value()
        #expect(out["status"] == 503 && out["attempts"] == 1)
        let count = try await h.call("http.request", ["url": .string("\(base)/count/\(key)")]).value()
        #expect(count["body"] == ["count": 1])
    }

    @Test func followsRedirectsWithALimit() async throws {
        let base = try Servers.httpURL()
        let h = try await host()
        let out = try await h.call("http.request", ["url": .string(base + "/redirect/3")]).value()
        #expect(out["status"] == 200)
        #expect(out["url"] == .string(base + "/json"))
        #expect(out["redirects"]?.arrayValue?.count == 3)
        let tooMany = try await h.call("http.request", ["url": .string(base + "/redirect/5"), "max_redirects": 2])
        #expect(tooMany.error?.code == "too_many_redirects")
        let notFollowed = try await h.call("http.request", ["url": .string(base + "/redirect/2"), "follow_redirects": false]).value()
        #expect(notFollowed["status"] == 302)
        #expect(notFollowed["headers"]?["location"] == "/redirect/1")
    }

    @Test func crossHostRedirectsAreBlockedByDefault() async throws {
        let base = try Servers.httpURL()
        let port = try #require(URL(string: base)?.port)
        let target = "http://localhost:\(port)/json"
        let r = try await host().call("http.request", ["url": .string(base + "/redirect-to"), "query": ["url": .string(target)]])
        #expect(r.error?.code == "redirect_blocked")
        // Allowed by configuration, the other host is followed (and checked like the first).
        let allowed = try await host(["allow_cidrs": ["127.0.0.0/8"], "follow_cross_host_redirects": true])
            .call("http.request", ["url": .string(base + "/redirect-to"), "query": ["url": .string(target)]]).value()
        #expect(allowed["status"] == 200 && allowed["url"] == .string(target))
    }

    @Test func everyRedirectHopIsRechecked() async throws {
        let base = try Servers.httpURL()
        // Loopback allowed, cross-host redirects allowed: the hop to the metadata address is
        // still refused, before any connection is made.
        let h = try await host(["allow_cidrs": ["127.0.0.0/8"], "follow_cross_host_redirects": true])
        for location in ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:a9fe:a9fe]/", "http://10.0.0.1/"] {
            let r = try await h.call("http.request", ["url": .string(base + "/redirect-to"), "query": ["url": .string(location)]])
            #expect(r.error?.code == "egress_denied", "\(location): \(r.error?.message ?? "no error")")
        }
    }

    @Test func ssrfToMetadataAndPrivateRangesIsRefusedByDefault() async throws {
        let h = try await host(.object([:]))
        let urls = [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://[::ffff:169.254.169.254]/", "http://[fe80::1]/", "http://10.0.0.1/", "http://172.16.0.1/",
            "http://192.168.1.1/", "http://100.64.0.1/", "http://0.0.0.0/", "http://[::]/", "http://[fd00::1]/",
            "http://224.0.0.1/", "http://[64:ff9b::a9fe:a9fe]/",
        ]
        for url in urls {
            let r = try await h.call("http.request", ["url": .string(url), "retries": 0])
            #expect(r.error?.code == "egress_denied", "\(url): \(r.error.map { "\($0.code) \($0.message)" } ?? "succeeded")")
        }
        // Allowing loopback does not allow the metadata service.
        let loop = try await host(["allow_cidrs": ["127.0.0.0/8"]])
        let md = try await loop.call("http.request", ["url": "http://169.254.169.254/latest/meta-data/"])
        #expect(md.error?.code == "egress_denied")
        #expect(md.error?.message.contains("link-local") == true)
    }

    @Test func loopbackNamesAreRefusedByDefault() async throws {
        let base = try Servers.httpURL()
        let port = try #require(URL(string: base)?.port)
        let h = try await host(.object([:]))
        // A name resolving to 127.0.0.1, the literal, and numeric spellings getaddrinfo accepts.
        for url in ["http://localhost:\(port)/json", "http://127.0.0.1:\(port)/json", "http://2130706433:\(port)/json",
                    "http://0x7f.1:\(port)/json", "http://127.1:\(port)/json", "http://[::1]:\(port)/json"] {
            let r = try await h.call("http.request", ["url": .string(url)])
            #expect(r.error?.code == "egress_denied", "\(url): \(r.error.map { "\($0.code) \($0.message)" } ?? "succeeded")")
        }
        // With loopback allowed by configuration, the same name works.
        let ok = try await host(["allow_cidrs": ["127.0.0.0/8"]]).call("http.request", ["url": .string("http://localhost:\(port)/json")]).value()
        #expect(ok["status"] == 200 && ok["address"] == "127.0.0.1")
    }

    @Test func allowedHostsAndPolicyHostAllowlist() async throws {
        let base = try Servers.httpURL()
        let restricted = try await host(["allow_cidrs": ["127.0.0.0/8"], "allowed_hosts": ["localhost"]])
        let r = try await restricted.call("http.request", ["url": .string(base + "/json")])
        #expect(r.error?.code == "host_not_allowed")
        // The default policy's http_hosts allowlist: 127.0.0.1 is on it, 127.0.0.2 is not.
        let policy = PolicyEngine(profile: try PolicyProfile.load(DriverFixtures.root + "/configs/policy.default.json"))
        let h = try await host(["allow_cidrs": ["127.0.0.0/8"]], gate: policy)
        let allowed = try await h.call("http.request", ["url": .string(base + "/json")], principal: "local")
        #expect(allowed.succeeded)
        let port = try #require(URL(string: base)?.port)
        let denied = try await h.call("http.request", ["url": .string("http://127.0.0.2:\(port)/json")], principal: "local")
        #expect(denied.step.status == .denied)
        #expect(denied.step.reason?.contains("default-deny") == true)
    }

    @Test func timeoutsComeFromTheInputAndTheStepDeadline() async throws {
        let base = try Servers.httpURL()
        let h = try await host()
        // The server would answer after 5 s: a deadline error proves the call was cut short.
        let byInput = try await h.call("http.request", ["url": .string(base + "/slow"), "query": ["ms": 5000], "timeout_ms": 300])
        #expect(byInput.error?.kind == .deadline)
        #expect(byInput.error?.code == "timeout")
        let byStep = try await h.call("http.request", ["url": .string(base + "/slow"), "query": ["ms": 5000]], timeoutMs: 300)
        #expect(byStep.error?.kind == .deadline)
        let fast = try await h.call("http.request", ["url": .string(base + "/slow"), "query": ["ms": 50], "timeout_ms": 5000]).value()
        #expect(fast["body"] == ["slept_ms": 50])
    }

    @Test func refusedConnectionsFailAndAreRetried() async throws {
        let port = try Servers.closedPort()
        let h = try await host()
        let once = try await h.call("http.request", ["url": .string("http://127.0.0.1:\(port)/"), "retries": 0])
        #expect(once.error?.code == "connection_failed")
        #expect(once.error?.kind == .tool)
        let retried = try await h.call("http.request", ["url": .string("http://127.0.0.1:\(port)/"), "retries": 2, "timeout_ms": 10_000])
        #expect(retried.error?.code == "connection_failed")
    }

    @Test func responseSizeIsCapped() async throws {
        let base = try Servers.httpURL()
        let h = try await host()
        let big = try await h.call("http.request", ["url": .string(base + "/big"), "query": ["bytes": 2_000_000], "max_response_bytes": 1_000_000])
        #expect(big.error?.code == "response_too_large")
        let ok = try await h.call("http.request", ["url": .string(base + "/big"), "query": ["bytes": 500_000], "max_response_bytes": 1_000_000]).value()
        #expect(ok["bytes"] == 500_000)
        // The instance cap wins over a larger request.
        let capped = try await host(["allow_cidrs": ["127.0.0.0/8"], "max_response_bytes": 1000])
        let r = try await capped.call("http.request", ["url": .string(base + "/big"), "query": ["bytes": 5000], "max_response_bytes": 100_000])
        #expect(r.error?.code == "response_too_large")
    }

    @Test func setCookieIsRedactedInTheOutput() async throws {
        let out = try await host().call("http.request", ["url": .string(try Servers.httpURL() + "/cookie")]).value()
        #expect(out["headers"]?["set-cookie"] == "[REDACTED]")
        #expect(!out.text.contains("s3cr3t-cookie"))
    }

    @Test func badInputsAreRefusedBeforeAnyRequest() async throws {
        let base = try Servers.httpURL()
        let h = try await host()
        let userinfo = try await h.call("http.request", ["url": .string(base.replacingOccurrences(of: "http://", with: "http://user:pw@") + "/json")])
        #expect(userinfo.error?.kind == .invalidArgument)
        let ftp = try await h.call("http.request", ["url": "ftp://127.0.0.1/x"])
        #expect(ftp.error?.kind == .invalidArgument)  // the inputSchema's pattern
        let crlf = try await h.call("http.request", ["url": .string(base + "/json"), "headers": ["X-A": "a\r\nX-Injected: 1"]])
        #expect(crlf.error?.kind == .invalidArgument)
        let hostHeader = try await h.call("http.request", ["url": .string(base + "/json"), "headers": ["Host": "evil.example"]])
        #expect(hostHeader.error?.kind == .invalidArgument)
        let badConfig = try await host(["allow_cidrs": ["not-a-cidr"]]).call("http.request", ["url": .string(base + "/json")])
        #expect(badConfig.step.status == .failed)
        #expect(badConfig.step.reason?.contains("allow_cidrs") == true)
    }
}
