import Foundation
import Host
import HostServer
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// An agent's versioned state over a real socket: compare-and-set with If-Match /
/// If-None-Match, the SSE watch (replay, live changes, compaction → snapshot), and the state.*
/// tools from a goal's plan.
@Suite struct AgentStateTests {
    typealias F = ServerFixtures

    static func put(_ client: any TestClientProtocol, _ agent: String, _ key: String, _ value: JSONValue, _ headers: [(String, String)] = []) async throws -> TestResponse {
        try await client.execute(uri: "/v1/agents/\(agent)/state/\(key)", method: .put, headers: Req.jsonHeaders(F.aliceKey, headers),
                                 body: Req.body(["value": value]))
    }

    @Test func compareAndSetOverREST() async throws {
        try await F.server(config: { $0.worker = nil }).withClient(.live) { client in
            let id = try #require(try await client.post("/v1/agents", F.aliceKey, ["name": "stateful"]).json["id"]?.stringValue)
            let first = try await Self.put(client, id, "cursor", 1, [("If-None-Match", "*")])
            #expect(first.status == .ok && first.json["version"] == 1 && first.headers[.eTag] == "\"1\"")
            let again = try await Self.put(client, id, "cursor", 2, [("If-None-Match", "*")])
            #expect(again.status == .conflict && again.errorCode == "version_conflict")
            #expect(try await Self.put(client, id, "cursor", 2, [("If-Match", "\"1\"")]).json["version"] == 2)
            let stale = try await Self.put(client, id, "cursor", 3, [("If-Match", "\"1\"")])
            #expect(stale.status == .conflict && stale.json["error"]?["message"]?.stringValue?.contains("version 2") == true)
            _ = try await Self.put(client, id, "cursor.b", ["x": true])
            _ = try await Self.put(client, id, "other", "z")
            #expect(try await client.get("/v1/agents/\(id)/state/cursor", F.aliceKey).json["value"] == 2)
            #expect(try await client.get("/v1/agents/\(id)/state?prefix=cursor", F.aliceKey).json["items"]?.arrayValue?.map { $0["key"] } == ["cursor", "cursor.b"])
            #expect(try await client.get("/v1/agents/\(id)/state/cursor", F.bobKey).status == .notFound)
            #expect(try await client.execute(uri: "/v1/agents/\(id)/state/cursor", method: .delete,
                                             headers: Req.bearer(F.aliceKey, [("If-Match", "\"1\"")])).status == .conflict)
            #expect(try await client.execute(uri: "/v1/agents/\(id)/state/cursor", method: .delete,
                                             headers: Req.bearer(F.aliceKey, [("If-Match", "\"2\"")])).status == .noContent)
            #expect(try await client.get("/v1/agents/\(id)/state/cursor", F.aliceKey).status == .notFound)
            let badBody = try await client.execute(uri: "/v1/agents/\(id)/state/k", method: .put, headers: Req.jsonHeaders(F.aliceKey), body: Req.body(["v": 1]))
            #expect(badBody.status == .unprocessableContent)
        }
    }

    /// The watch replays every change after `from`, then streams new ones; after a compaction
    /// that removed changes it has not seen, it says so and sends a snapshot.
    @Test func theWatchNeverSkipsAChange() async throws {
        let server = try await F.server(config: { $0.worker = nil })
        let (p, serving) = try await server.listening()
        defer { serving.cancel() }
        let agent = try await HTTP1.request(port: p, "POST", "/v1/agents", F.aliceKey, ["name": "watched"])
        let id = try #require(agent["id"]?.stringValue)
        for v in 1...3 { _ = try await HTTP1.request(port: p, "PUT", "/v1/agents/\(id)/state/k", F.aliceKey, ["value": .int(v)]) }

        let stream = try SSEStream(port: p, path: "/v1/agents/\(id)/watch?from=0", token: F.aliceKey)
        defer { stream.close() }
        let replayed = try await stream.events(3)
        #expect(replayed.map { $0.data["value"] } == [1, 2, 3] && replayed.allSatisfy { $0.event == "change" })
        _ = try await HTTP1.request(port: p, "PUT", "/v1/agents/\(id)/state/live", F.aliceKey, ["value": "now"])
        let live = try await stream.events(1)
        #expect(live.first?.data["key"] == "live" && live.first?.data["value"] == "now")

        // Compact all but the last change: a watch from 0 cannot replay, so it gets a snapshot.
        _ = try await server.host.episodes?.store.stateStore?.compactStateChanges(keepLast: 1)
        let late = try SSEStream(port: p, path: "/v1/agents/\(id)/watch?from=0", token: F.aliceKey)
        defer { late.close() }
        let events = try await late.events(2)
        #expect(events.map(\.event) == ["compacted", "snapshot"])
        #expect(events.last?.data["entries"]?.arrayValue?.map { $0["key"] } == ["k", "live"])
    }

    /// The state tools keep REST's limits: a value over 256 KiB is refused (`too_large`), not stored.
    @Test func theStateToolsRefuseOversizeValues() async throws {
        try await F.server(config: { $0.bodyLimitBytes = 1 << 20 }).withClient(.live) { client in
            let big = String(repeating: "x", count: 300 * 1024)
            let r = try await client.post("/tools/state.put_shared", F.adminKey, ["namespace": "team", "key": "k", "value": .string(big)])
            #expect(r.status == .unprocessableContent && r.json["error"]?["tool_code"] == "too_large", "\(r.status) \(r.json["error"] ?? .null)")
            let ok = try await client.post("/tools/state.put_shared", F.adminKey, ["namespace": "team", "key": "k", "value": "small"])
            #expect(ok.status == .ok && ok.json["output"]?["version"] == 1, "\(ok.json)")
        }
    }

    @Test func goalsUseTheStateTools() async throws {
        try await F.server().withClient(.live) { client in
            let id = try #require(try await client.post("/v1/agents", F.adminKey, ["name": "counter", "principal": "admin"]).json["id"]?.stringValue)
            let plan: JSONValue = ["name": "count", "steps": [
                ["id": "set", "call": "state.put", "input": ["key": "n", "value": 1, "if_version": 0]],
                ["id": "read", "call": "state.get", "input": ["key": "n"], "depends_on": "set"],
                ["id": "changes", "call": "state.watch", "input": ["from": 0], "depends_on": "read"],
            ], "output": ["n": "${steps.read.output.value}", "changes": "${steps.changes.output.changes}"]]
            let goal = try #require(try await client.post("/v1/agents/\(id)/goals", F.adminKey, ["goal": "count", "plan": plan]).json["id"]?.stringValue)
            try await Wait.until("the goal ends") {
                let s = try await client.get("/v1/agents/\(id)/runs/\(goal)", F.adminKey).json["status"]
                return s == "completed" || s == "failed"
            }
            let out = try await client.get("/v1/episodes/\(goal)", F.adminKey).json["document"]?["output"]
            #expect(out?["n"] == 1 && out?["changes"]?[0]?["key"] == "n", "\(out ?? .null)")
            #expect(try await client.get("/v1/agents/\(id)/state/n", F.adminKey).json["version"] == 1)
            // A second goal's CAS on the same base version fails the step (version_conflict).
            let again = try #require(try await client.post("/v1/agents/\(id)/goals", F.adminKey, ["goal": "count", "plan": plan]).json["id"]?.stringValue)
            try await Wait.until("the second goal ends") {
                let s = try await client.get("/v1/agents/\(id)/runs/\(again)", F.adminKey).json["status"]
                return s == "completed" || s == "failed"
            }
            #expect(try await client.get("/v1/agents/\(id)/runs/\(again)", F.adminKey).json["status"] == "failed")
        }
    }
}

/// A plain HTTP/1.1 client on a socket, for what the test client cannot do (a stream).
enum HTTP1 {
    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            off += n
        }
    }

    /// One request with `Connection: close`; the JSON body of the answer.
    static func request(port: Int, _ method: String, _ path: String, _ token: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        try await OffPool.run {
            let fd = try connect(port: port)
            defer { close(fd) }
            let payload = body?.serialized() ?? ""
            send(fd, "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n"
                 + "Content-Length: \(payload.utf8.count)\r\nConnection: close\r\n\r\n\(payload)")
            var data = [UInt8]()
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                data += buf[0..<n]
            }
            let text = String(decoding: data, as: UTF8.self)
            guard let split = text.range(of: "\r\n\r\n") else { return .null }
            return (try? JSONValue.parse(String(text[split.upperBound...]))) ?? .null
        }
    }
}

/// A server-sent-events stream read from a socket.
final class SSEStream: @unchecked Sendable {
    // @unchecked: used by one test task at a time.
    struct Event { var event: String; var data: JSONValue }
    let fd: Int32
    private var buffer = ""
    private var headerSeen = false

    init(port: Int, path: String, token: String) throws {
        fd = try HTTP1.connect(port: port)
        HTTP1.send(fd, "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nAccept: text/event-stream\r\n\r\n")
    }

    func close() { Glibc.close(fd) }

    /// The next `n` events (waits for them; a minute at most).
    func events(_ n: Int) async throws -> [Event] {
        var out: [Event] = []
        let until = Date().addingTimeInterval(60)
        while out.count < n && Date() < until {
            if let e = nextBuffered() { if e.event != "" { out.append(e) }; continue }
            let chunk = try await OffPool.run { [fd] () throws -> String in
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&pfd, 1, 200) > 0 else { return "" }
                var buf = [UInt8](repeating: 0, count: 65536)
                let got = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                return got > 0 ? String(decoding: buf[0..<got], as: UTF8.self) : ""
            }
            // Without CR: "\r\n" is one Character in Swift and would hide the line breaks.
            buffer += chunk.replacingOccurrences(of: "\r", with: "")
        }
        return out
    }

    /// One complete event from the buffer (chunked framing and headers skipped).
    private func nextBuffered() -> Event? {
        guard let end = buffer.range(of: "\n\n") else { return nil }
        let block = String(buffer[..<end.lowerBound])
        buffer = String(buffer[end.upperBound...])
        var event = "", data = ""
        for line in block.split(separator: "\n") {
            if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
            if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
        }
        return Event(event: event, data: (try? JSONValue.parse(data)) ?? .null)
    }
}

/// Shared memory namespaces: the policy decides who may write and read which namespace
/// (`namespaces` over the tools' declared `namespace` input), through the tool route.
@Suite struct SharedMemoryTests {
    typealias F = ServerFixtures

    static let policy = """
    {
      "roles": { "admin": {}, "user": {}, "service": {} },
      "principals": { "admin": "admin", "alice": "user", "bob": "user", "ci": "service" },
      "rules": [
        { "id": "alice-shares-team", "effect": "allow", "principals": ["alice"], "tools": ["memory.share", "memory.recall_shared", "state.put_shared", "state.get_shared"],
          "conditions": { "namespaces": ["team-*"] } },
        { "id": "bob-reads-team-a", "effect": "allow", "principals": ["bob"], "tools": ["memory.recall_shared", "state.get_shared"],
          "conditions": { "namespaces": ["team-a"] } }
      ]
    }
    """

    @Test func thePolicyDecidesWhoUsesWhichNamespace() async throws {
        try await F.server(config: { $0.worker = nil }, policy: Self.policy).withClient(.live) { client in
            let shared = try await client.post("/tools/memory.share", F.aliceKey, ["namespace": "team-a", "text": "the release is on tuesday"])
            #expect(shared.status == .ok, "\(shared.json)")
            let secret = try await client.post("/tools/memory.share", F.aliceKey, ["namespace": "secret", "text": "x"])
            #expect(secret.status == .forbidden && secret.json["error"]?["message"]?.stringValue?.contains("namespaces") == true, "\(secret.json)")
            let read = try await client.post("/tools/memory.recall_shared", F.bobKey, ["namespace": "team-a", "query": "release"])
            #expect(read.status == .ok && read.json["output"]?["items"]?[0]?["text"] == "the release is on tuesday", "\(read.json)")
            #expect(try await client.post("/tools/memory.recall_shared", F.bobKey, ["namespace": "team-b", "query": "release"]).status == .forbidden)
            #expect(try await client.post("/tools/memory.share", F.bobKey, ["namespace": "team-a", "text": "mine"]).status == .forbidden)
            // Shared state, under the same condition.
            let put = try await client.post("/tools/state.put_shared", F.aliceKey, ["namespace": "team-a", "key": "release", "value": "tuesday", "if_version": 0])
            #expect(put.status == .ok && put.json["output"]?["version"] == 1, "\(put.json)")
            let got = try await client.post("/tools/state.get_shared", F.bobKey, ["namespace": "team-a", "key": "release"])
            #expect(got.status == .ok && got.json["output"]?["value"] == "tuesday", "\(got.json)")
            #expect(try await client.post("/tools/state.put_shared", F.bobKey, ["namespace": "team-a", "key": "release", "value": "x"]).status == .forbidden)
            #expect(try await client.post("/tools/state.put_shared", F.aliceKey, ["namespace": "secret", "key": "k", "value": 1]).status == .forbidden)
            let stale = try await client.post("/tools/state.put_shared", F.aliceKey, ["namespace": "team-a", "key": "release", "value": "wed", "if_version": 0])
            #expect(stale.status != .ok && stale.json["error"]?["message"]?.stringValue?.contains("version") == true, "\(stale.json)")
        }
    }
}
