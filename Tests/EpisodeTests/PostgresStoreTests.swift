import Foundation
import Logging
import PostgresNIO
import PostgresStore
import PostgresSupport
import PostgresTestSupport
import Testing
import Host
@testable import Runs
import JSON

/// The store contract on the real PostgreSQL 15 that `make test` starts (Tests/servers), each
/// test in a database of its own.
@Suite struct PostgresStoreTests {
    static let logger = PostgresTestDatabase.logger
    typealias Stores = PostgresTestDatabase.Stores
    static func baseURL() throws -> String { try PostgresTestDatabase.baseURL() }
    static func freshDatabase() async throws -> String { try await PostgresTestDatabase.fresh() }

    static func database(_ stores: Stores) async throws -> StoreConformance.Database {
        let url = try await freshDatabase()
        return { try await stores.connect(url) }
    }

    @Test func conformanceEpisodeIndex() async throws {
        try await StoreConformance.episodeIndex(try await Self.database(Stores()))
    }

    @Test func conformancePolicyState() async throws {
        try await StoreConformance.policyState(try await Self.database(Stores()))
    }

    @Test func conformanceTransactions() async throws {
        try await StoreConformance.policyStateTransactionsLoseNoIncrement(try await Self.database(Stores()))
    }

    /// Two hosts opening a new database together migrate it once; a database from a newer
    /// nova-host is refused with a message that says so.
    @Test func schemaIsMigratedOnceAndANewerOneIsRefused() async throws {
        let url = try await Self.freshDatabase()
        let opened = Stores()
        let stores = try await withThrowingTaskGroup(of: PostgresStore.self) { group in
            for _ in 0..<4 { group.addTask { try await opened.connect(url) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        try await stores[0].indexEpisode(StoreConformance.summary(1))
        #expect(try await stores[3].episode(runId: "run-1") == StoreConformance.summary(1))
        let config = try PostgresDSN(dsn: url).configuration(connectTimeoutMs: 10_000, startup: [])
        let conn = try await PostgresConnection.connect(configuration: config, id: 2, logger: Self.logger)
        try await conn.query("UPDATE nova_schema SET version = 99", logger: Self.logger)
        try await conn.close()
        do {
            _ = try await opened.connect(url)
            Issue.record("a newer schema was accepted")
        } catch {
            #expect("\(error)".contains("schema version 99, newer than this nova-host's (\(PostgresStore.schemaVersion))"), "\(error)")
        }
    }

    /// A server that does not answer: the error names host and port, never the password.
    @Test func anUnreachableServerIsNamedWithoutThePassword() async throws {
        let port = try Ports.closed()
        do {
            _ = try await PostgresStore.connect(url: "postgres://nova:s3cret-pw@127.0.0.1:\(port)/nova?sslmode=disable", connectTimeoutMs: 3000)
            Issue.record("connected to a closed port")
        } catch {
            let text = "\(error)"
            #expect(text.contains("cannot connect to PostgreSQL at 127.0.0.1:\(port)/nova"), "\(text)")
            #expect(!text.contains("s3cret-pw"), "\(text)")
        }
        do {
            _ = try await PostgresStore.connect(url: "postgres://nova:s3cret-pw@127.0.0.1:\(port)/nova?sslmode=bogus")
            Issue.record("a bad sslmode was accepted")
        } catch {
            #expect("\(error)".hasPrefix("invalid store URL:") && !"\(error)".contains("s3cret-pw"), "\(error)")
        }
    }

    /// A host's directory: drivers/ with the text driver, and a policy letting uma use it.
    static func hostDirectory(_ label: String) throws -> String {
        let dir = EpisodeFixtures.tempDir(label)
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestPaths.binDir + "/libnova_text.so", toPath: dir + "/drivers/libnova_text.so")
        try #"{"principals": {"uma": "user"}, "rules": [{"id": "t", "effect": "allow", "tools": ["text.*"]}]}"#
            .write(toFile: dir + "/policy.json", atomically: true, encoding: .utf8)
        return dir
    }

    static func admin(_ url: String) async throws -> PostgresConnection {
        try await PostgresConnection.connect(configuration: try PostgresDSN(dsn: url).configuration(connectTimeoutMs: 10_000, startup: []),
                                             id: 3, logger: logger)
    }

    /// Two hosts (each its own data directory and connection) append to one chain at the same
    /// time: one chain, seq 1…N without a fork, readable and verifiable from either.
    @Test func hostsShareOneChainThatNeverForks() async throws {
        let url = try await Self.freshDatabase()
        let stores = Stores()
        let dirs = [EpisodeFixtures.tempDir("pg-a"), EpisodeFixtures.tempDir("pg-b")]
        defer { dirs.forEach(EpisodeFixtures.remove) }
        var logs: [EpisodeLog] = []
        for d in dirs { logs.append(try await EpisodeLog.open(dataDirectory: d, store: try await stores.connect(url))) }
        #expect(logs.allSatisfy { $0.chain != nil })
        let each = 15
        let refs = try await withThrowingTaskGroup(of: EpisodeRef.self) { group in
            for (h, log) in logs.enumerated() {
                for i in 0..<each {
                    group.addTask { try await log.write(body: EpisodeFixtures.body("h\(h)-\(i)"), runId: "h\(h)-\(i)").ref }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(refs.map(\.seq).sorted() == Array(1...(2 * each)))
        for log in logs {
            let report = try await log.verify()
            #expect(report.isIntact && report.checked == 2 * each && report.tip?.seq == 2 * each, "\(report)")
            #expect(try await log.list(limit: 100).count == 2 * each)
        }
        let e = try await logs[1].show(runId: "h0-3")
        #expect(e.problem == nil && e.document["run_id"] == "h0-3")
        await #expect(throws: EpisodeError.self) { _ = try await logs[0].write(body: EpisodeFixtures.body("h1-2"), runId: "h1-2") }
        await #expect(throws: EpisodeError.self) { _ = try await logs[0].show(runId: "nope") }
        // The files under the data directories hold no episodes: the database does.
        #expect(try logs[0].episodes.list().isEmpty)
    }

    /// The table refuses edits; a row edited anyway (the trigger bypassed, as a database owner
    /// could) is found and named as the first broken link.
    @Test func anEditedRowIsTheFirstBrokenLink() async throws {
        let url = try await Self.freshDatabase()
        let stores = Stores()
        let dir = EpisodeFixtures.tempDir("pg-edit")
        defer { EpisodeFixtures.remove(dir) }
        let log = try await EpisodeLog.open(dataDirectory: dir, store: try await stores.connect(url))
        for i in 1...6 { try await log.write(body: EpisodeFixtures.body("e\(i)"), runId: "e\(i)") }
        #expect(try await log.verify().isIntact)
        let conn = try await Self.admin(url)
        await #expect(throws: (any Error).self) {
            try await conn.query("UPDATE nova_episode_chain SET run_id = run_id WHERE seq = 4", logger: Self.logger)
        }
        try await conn.query("SET session_replication_role = replica", logger: Self.logger)
        try await conn.query("UPDATE nova_episode_chain SET bytes = convert_to(replace(convert_from(bytes, 'UTF8'), 'alice', 'mallory'), 'UTF8') WHERE seq = 4", logger: Self.logger)
        try await conn.close()
        let report = try await log.verify()
        #expect(!report.isIntact && report.firstBroken?.seq == 4 && report.firstBroken?.kind == .changed, "\(report)")
        #expect(try await log.show(runId: "e4").problem?.hasPrefix("changed") == true)
    }

    /// `--store postgres://…` through the CLI: a run on one host (data directory) is listed,
    /// shown and verified by another host on the same database.
    @Test func theCLIUsesThePostgresStore() async throws {
        let url = try await Self.freshDatabase()
        let dir = try Self.hostDirectory("pg-cli")
        defer { EpisodeFixtures.remove(dir) }
        try #"{"name": "shout", "steps": [{"id": "a", "call": "text.upper", "input": {"text": "hi"}}]}"#
            .write(toFile: dir + "/plan.json", atomically: true, encoding: .utf8)
        func novaHost(_ args: [String]) async throws -> (code: Int32, out: String, err: String) {
            let r = try await ProcessRunner.run(TestPaths.novaHost, args)
            return (r.status, r.stdout, r.stderr)
        }
        for _ in 0..<2 {
            let run = try await novaHost(["run", dir + "/plan.json", "--principal", "uma", "--drivers", dir + "/drivers", "--data", dir + "/a",
                                    "--policy", dir + "/policy.json", "--store", url])
            #expect(run.code == 0, "\(run)")
        }
        let listed = try await novaHost(["episodes", "list", "--json", "--data", dir + "/b", "--store", url])
        #expect(listed.code == 0, "\(listed)")
        let rows = try JSONValue.parse(listed.out).arrayValue ?? []
        #expect(rows.count == 2 && rows.allSatisfy { $0["plan_name"] == "shout" && $0["principal"] == "uma" }, "\(listed.out)")
        let runId = try #require(rows.first?["run_id"]?.stringValue)
        let shown = try await novaHost(["episodes", "show", runId, "--data", dir + "/b", "--store", url])
        #expect(shown.code == 0 && shown.out.contains("HI"), "\(shown)")
        let verified = try await novaHost(["episodes", "verify", "--data", dir + "/b", "--store", url])
        #expect(verified.code == 0 && verified.out.contains("chain intact: 2 episode(s)"), "\(verified)")
        let bad = try await novaHost(["episodes", "list", "--data", dir + "/b", "--store", "postgres://nova:pw-secret@127.0.0.1:1/nova?sslmode=disable"])
        #expect(bad.code != 0 && bad.err.contains("cannot connect to PostgreSQL at 127.0.0.1:1/nova") && !bad.err.contains("pw-secret"), "\(bad)")
    }

    /// What is written is what may be read: a run's secrets are redacted before its row is
    /// written, as before a file is (checked in the raw bytes of the row).
    @Test func secretsNeverReachTheDatabase() async throws {
        let url = try await Self.freshDatabase()
        let stores = Stores()
        let dir = try Self.hostDirectory("pg-secret")
        defer { EpisodeFixtures.remove(dir) }
        let log = try await EpisodeLog.open(dataDirectory: dir + "/data", store: try await stores.connect(url))
        let nova = try NovaHost(paths: HostPaths(driversDirectory: dir + "/drivers", dataDirectory: dir + "/data", policyFile: dir + "/policy.json"),
                                episodes: log)
        let plan = try Plan.parse(JSONValue.parse(#"{"inputs": {"password": {"type": "string"}}, "steps": [{"id": "a", "call": "text.upper", "input": {"text": "x", "token": "s3cret-token"}}]}"#))
        let request = try await nova.pipeline.prepare(RunSubmission(plan: plan, inputs: ["password": "hunter2"], principal: "uma", origin: "test"))
        let result = await nova.pipeline.execute(request)
        #expect(result.episode != nil, "\(result.episodeError ?? "-")")
        let conn = try await Self.admin(url)
        var raw = ""
        for try await (bytes) in try await conn.query("SELECT bytes FROM nova_episode_chain", logger: Self.logger).decode(ByteBuffer.self) {
            raw += String(buffer: bytes)
        }
        try await conn.close()
        #expect(raw.contains(result.record.runId) && !raw.contains("hunter2") && !raw.contains("s3cret-token"), "\(raw)")
    }
}
