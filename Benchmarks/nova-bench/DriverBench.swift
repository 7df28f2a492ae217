import CHostSupport
import AsyncHTTPClient
import DriverABI
import Foundation
import Host
import JSON
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// Driver overhead: the same operation through nova-host (registry → ABI → driver .so) and
/// straight through the library the driver uses, in this process, against the real servers
/// of Tests/servers/with-servers.sh (NOVA_TEST_PG_DSN, NOVA_TEST_HTTP_URL):
///
///   postgres.query `SELECT 1`  vs  PostgresNIO `SELECT 1` on one connection
///                                 (and vs PostgresNIO doing the driver's transaction:
///                                  BEGIN READ ONLY; SELECT 1; ROLLBACK)
///   http.request GET /json     vs  AsyncHTTPClient GET /json (keep-alive, body read)
///
/// Calls are sequential (latency, not throughput); figures are medians and p90 of single calls.
enum DriverBench {
    struct Stats {
        var median: Double
        var p90: Double
    }

    static func time(warmup: Int, samples: Int, _ body: () async throws -> Void) async throws -> Stats {
        for _ in 0..<warmup { try await body() }
        var xs: [Double] = []
        xs.reserveCapacity(samples)
        for _ in 0..<samples {
            let t0 = nova_monotonic_ns()
            try await body()
            xs.append(Double(nova_monotonic_ns() - t0))
        }
        xs.sort()
        return Stats(median: Measure.median(xs), p90: xs[min(xs.count - 1, xs.count * 9 / 10)])
    }

    static func line(_ label: String, _ s: Stats, peer: Stats? = nil) -> String {
        let pad = label.padding(toLength: 46, withPad: " ", startingAt: 0)
        var text = "    \(pad) median \(Measure.fmt(s.median).padding(toLength: 12, withPad: " ", startingAt: 0)) p90 \(Measure.fmt(s.p90))"
        if let peer { text += String(format: "   ×%.2f (%@%@)", s.median / peer.median, s.median >= peer.median ? "+" : "", Measure.fmt(s.median - peer.median)) }
        return text
    }

    static func driversDirectory() -> String? {
        var candidates = [".build/release", ".build-drivers/release", "drivers", ".build/debug"]
        if let dir = ProcessInfo.processInfo.environment["NOVA_BIN_DIR"] { candidates.insert(dir, at: 0) }
        return candidates.first { dir in
            ["postgres", "http"].allSatisfy { FileManager.default.fileExists(atPath: "\(dir)/libnova_\($0).so") }
        }
    }

    static func run() async throws {
        let env = ProcessInfo.processInfo.environment
        guard let dsn = env["NOVA_TEST_PG_DSN"], let httpBase = env["NOVA_TEST_HTTP_URL"] else {
            print("  needs the test servers: Tests/servers/with-servers.sh $(swift build -c release --show-bin-path)/nova-bench drivers")
            return
        }
        guard let dir = driversDirectory() else {
            print("  libnova_postgres.so / libnova_http.so not found (build them: swift build -c release)")
            return
        }
        print("  drivers from \(dir); sequential calls on 127.0.0.1")
        let registry = DriverRegistry(driversDirectory: dir, driverConfig: [
            "postgres": ["dsn": .string(dsn), "max_connections": 1],
            "http": ["allow_cidrs": ["127.0.0.0/8"]],
        ])
        try await postgres(registry: registry, dsn: dsn)
        try await http(registry: registry, base: httpBase)
    }

    static func postgres(registry: DriverRegistry, dsn: String) async throws {
        let samples = 2000, warmup = 200
        let pg = try await registry.driver(named: "postgres")
        let request = ToolCallRequest(tool: "query", input: Array(#"{"sql":"SELECT 1"}"#.utf8))
        let check = try JSONValue.parse(try await pg.call(request).output)
        precondition(check["rows"] == [["?column?": 1]], "unexpected postgres.query output \(check)")
        let viaHost = try await time(warmup: warmup, samples: samples) { _ = try await pg.call(request) }

        // The same tool as a one-step plan: policy, schema validation, records.
        let plan = try Plan.parse(["name": "bench", "steps": [["id": "q", "call": "postgres.query", "input": ["sql": "SELECT 1"]]]])
        // The default policy's postgres rule and condition, with a rate limit that is checked on
        // every call but never runs out during the benchmark.
        let profile = try PolicyProfile(json: [
            "principals": ["bench": "user"],
            "rules": [["id": "postgres-read-only", "effect": "allow", "roles": ["user"], "tools": ["postgres.query"],
                       "conditions": ["postgres_read_only": true]]],
            "rate_limits": [["id": "per-principal", "scope": "principal", "capacity": 1_000_000_000, "refill_per_second": 1_000_000]],
        ])
        let runner = PlanRunner(registry: registry, gate: PolicyEngine(profile: profile))
        let viaPlan = try await time(warmup: warmup / 4, samples: samples / 4) {
            let r = await runner.run(plan, inputs: [:], principal: "bench", runId: RunId.make())
            precondition(r.status == .succeeded, "plan failed: \(r.error ?? "")")
        }

        // Straight PostgresNIO, one connection, same server.
        guard let url = URLComponents(string: dsn), let host = url.host, let user = url.user else { print("  bad NOVA_TEST_PG_DSN"); return }
        var config = PostgresConnection.Configuration(host: host, port: url.port ?? 5432, username: user, password: url.password,
                                                      database: String(url.path.dropFirst()), tls: .disable)
        config.options.connectTimeout = .seconds(5)
        let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let conn = try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: config, id: 1, logger: logger)
        let direct = try await time(warmup: warmup, samples: samples) {
            for try await row in try await conn.query("SELECT 1", logger: logger) { _ = try row.decode(Int.self) }
        }
        let directTx = try await time(warmup: warmup, samples: samples) {
            try await conn.query("BEGIN READ ONLY", logger: logger)
            for try await row in try await conn.query("SELECT 1", logger: logger) { _ = try row.decode(Int.self) }
            try await conn.query("ROLLBACK", logger: logger)
        }
        try await conn.close()
        print("  postgres.query SELECT 1 (\(samples) calls):")
        print(line("PostgresNIO direct (1 round trip)", direct))
        print(line("PostgresNIO BEGIN READ ONLY/SELECT/ROLLBACK", directTx, peer: direct))
        print(line("nova-host driver call (ABI + JSON + tx)", viaHost, peer: direct))
        print(line("  … vs the same transaction done directly", viaHost, peer: directTx))
        print(line("nova-host one-step plan (policy, schemas)", viaPlan, peer: direct))
    }

    static func http(registry: DriverRegistry, base: String) async throws {
        let samples = 2000, warmup = 200
        let driver = try await registry.driver(named: "http")
        let request = ToolCallRequest(tool: "request", input: JSONValue.object(["url": .string(base + "/json")]).serializedBytes())
        let check = try JSONValue.parse(try await driver.call(request).output)
        precondition(check["status"] == 200, "unexpected http.request output \(check)")
        let viaHost = try await time(warmup: warmup, samples: samples) { _ = try await driver.call(request) }

        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        let direct = try await time(warmup: warmup, samples: samples) {
            let response = try await client.execute(HTTPClientRequest(url: base + "/json"), timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 10 * 1024 * 1024)
            _ = try JSONValue.parse(Array(body.readableBytesView))
        }
        try await client.shutdown()
        print("  http GET /json (\(samples) calls, keep-alive):")
        print(line("AsyncHTTPClient direct (+ JSON parse)", direct))
        print(line("nova-host http.request (ABI + checks + JSON)", viaHost, peer: direct))
    }
}
