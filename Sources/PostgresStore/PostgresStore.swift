import Foundation
import Episodes
import HostSupport
import Store
import JSON
import Logging
import NIOCore
import PostgresNIO
import PostgresSupport
import Synchronization

/// The `HostStore` on PostgreSQL, for several hosts sharing one database (`--store
/// postgres://…`). It passes the same `StoreConformance` suite as the embedded SQLite store.
///
/// - Schema: versioned migrations in `nova_schema`, applied in one transaction under an
///   advisory lock (two hosts starting together migrate once); a database whose version is
///   newer than this binary's is refused.
/// - Policy state: `updatePolicyState` takes a transaction-scoped advisory lock per key (in
///   sorted order, so two hosts never deadlock) before reading, so concurrent read-modify-write
///   cycles on any host lose no update — also for keys that have no row yet, which a row lock
///   could not cover.
/// - Values are stored as this host's own JSON text, so big integers and member names come back
///   exactly (jsonb would normalize them).
///
/// - Episodes: rows of the append-only `nova_episode_chain` (a trigger refuses UPDATE, DELETE
///   and TRUNCATE), sealed exactly as episode files are (`EpisodeFormat`), one chain for every
///   host: an append serializes on the chain head under an advisory lock inside its
///   transaction, and writes the index entry in the same transaction.
public final class PostgresStore: HostStore, EpisodeChainStore, Sendable {
    /// The schema version this code writes.
    public static let schemaVersion = 10

    /// Migrations; entry `i` takes the schema from version `i` to `i + 1`.
    static let migrations: [[PostgresQuery]] = [
        [
            """
            CREATE TABLE nova_episodes (
                run_id      TEXT PRIMARY KEY,
                seq         BIGINT NOT NULL UNIQUE,
                hash        TEXT NOT NULL,
                plan_name   TEXT NOT NULL,
                principal   TEXT NOT NULL,
                status      TEXT NOT NULL,
                started_at  TEXT NOT NULL,
                finished_at TEXT NOT NULL,
                duration_ms DOUBLE PRECISION NOT NULL,
                calls       BIGINT NOT NULL,
                tokens      BIGINT NOT NULL,
                cost_micros BIGINT NOT NULL
            )
            """,
            "CREATE INDEX nova_episodes_by_status ON nova_episodes(status, seq)",
            "CREATE INDEX nova_episodes_by_principal ON nova_episodes(principal, seq)",
            """
            CREATE TABLE nova_policy_state (
                key        TEXT PRIMARY KEY,
                value      TEXT NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
        ],
        // 2: the episode chain itself, append-only (rows are never updated or deleted).
        [
            """
            CREATE TABLE nova_episode_chain (
                seq        BIGINT PRIMARY KEY,
                run_id     TEXT NOT NULL UNIQUE,
                hash       TEXT NOT NULL,
                prev_hash  TEXT NOT NULL,
                bytes      BYTEA NOT NULL,
                written_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE FUNCTION nova_episode_chain_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'nova_episode_chain is append-only'; END $$
            """,
            """
            CREATE TRIGGER nova_episode_chain_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON nova_episode_chain
            FOR EACH STATEMENT EXECUTE FUNCTION nova_episode_chain_append_only()
            """,
        ],
        // 3: the job queue (JobQueueStore; JobRow.columns is the column order). Times are
        // milliseconds since the epoch on the database's clock (see PostgresStore.nowMs).
        [
            """
            CREATE TABLE nova_jobs (
                seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                id               TEXT NOT NULL UNIQUE,
                kind             TEXT NOT NULL,
                queue            TEXT NOT NULL,
                payload          TEXT NOT NULL,
                priority         BIGINT NOT NULL,
                state            TEXT NOT NULL,
                attempt          BIGINT NOT NULL,
                max_attempts     BIGINT NOT NULL,
                backoff_base_ms  BIGINT NOT NULL,
                backoff_max_ms   BIGINT NOT NULL,
                run_at_ms        BIGINT NOT NULL,
                unique_key       TEXT,
                last_error       TEXT,
                worker           TEXT,
                lease_until_ms   BIGINT,
                started_at_ms    BIGINT,
                cancel_requested BIGINT NOT NULL,
                created_at_ms    BIGINT NOT NULL,
                updated_at_ms    BIGINT NOT NULL,
                finished_at_ms   BIGINT,
                result           TEXT,
                attempts         TEXT NOT NULL
            )
            """,
            "CREATE INDEX nova_jobs_runnable ON nova_jobs(queue, priority DESC, run_at_ms, seq) WHERE state IN ('available', 'retryable')",
            "CREATE INDEX nova_jobs_leases ON nova_jobs(lease_until_ms) WHERE state = 'running'",
            "CREATE INDEX nova_jobs_by_state ON nova_jobs(state, seq)",
            """
            CREATE UNIQUE INDEX nova_jobs_pending_unique_key ON nova_jobs(unique_key)
            WHERE unique_key IS NOT NULL AND state IN ('available', 'retryable', 'running')
            """,
            // Wake-ups for every host's workers, sent on commit: 'q:<queue>' when a job becomes
            // available, 'c:<id>' when a running job's cancel is requested.
            """
            CREATE FUNCTION nova_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.state IN ('available', 'retryable') THEN PERFORM pg_notify('nova_jobs', 'q:' || NEW.queue); END IF;
                IF NEW.state = 'running' AND NEW.cancel_requested = 1 THEN PERFORM pg_notify('nova_jobs', 'c:' || NEW.id); END IF;
                RETURN NULL;
            END $$
            """,
            """
            CREATE TRIGGER nova_jobs_notify AFTER INSERT OR UPDATE OF state, cancel_requested ON nova_jobs
            FOR EACH ROW WHEN (NEW.state IN ('available', 'retryable') OR NEW.cancel_requested = 1)
            EXECUTE FUNCTION nova_jobs_notify()
            """,
        ],
        // 4: agents, goals and memory (PostgresAgents.swift).
        agentsMigration,
        // 5: agents' versioned state and its change log (PostgresState.swift).
        stateMigration,
        // 6: the message bus (PostgresBus.swift).
        busMigration,
        // 7: templates and approval requests (PostgresTemplatesApprovals.swift).
        templatesApprovalsMigration,
        // 8: the control-plane audit log (PostgresAudit.swift).
        auditMigration,
        // 9: end times and denials in the episode index, for aggregates (PostgresEpisodeAggregates.swift).
        episodeFactsMigration,
        // 10: the runs list filtered by plan (newest first) reads an index, not every episode.
        ["CREATE INDEX nova_episodes_by_plan ON nova_episodes(plan_name, seq)"],
    ]

    /// Where the database is, for messages (`host:port/database`, never credentials).
    public let target: String
    let client: PostgresClient
    private let runner: Task<Void, Never>
    /// The database clock minus this host's, in milliseconds (measured on connect), so that
    /// leases and schedules written by different hosts compare on one clock.
    let clockOffsetMs = Atomic<Int64>(0)
    /// Job wake-ups (LISTEN nova_jobs, started by the first `wakeTicket`).
    let jobWake = WakeSignal()
    public let cancelRequests = WakeSignal()
    /// Bus wake-ups ('b:' notifications on the same channel).
    let busWake = WakeSignal()
    let listener = Mutex<Task<Void, Never>?>(nil)
    let listening = WakeSignal()
    let logger = Logger(label: "nova.store.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Connects to the database `url` names (`postgres://user:password@host:port/db?sslmode=…`
    /// or libpq key=value pairs), checks that it answers within `connectTimeoutMs`, and creates
    /// or migrates the schema. Errors name the server, never the password.
    public static func connect(url: String, connectTimeoutMs: Int = 10_000, maxConnections: Int = 16) async throws -> PostgresStore {
        let dsn: PostgresDSN
        do { dsn = try PostgresDSN(dsn: url) } catch { throw PostgresStoreError("invalid store URL: \(error.message)") }
        let clientConfig = dsn.clientConfiguration(connectTimeoutMs: connectTimeoutMs, maxConnections: maxConnections)
        let store = PostgresStore(client: PostgresClient(configuration: clientConfig),
                                  target: dsn.endpoint + "/" + (dsn.database ?? dsn.user))
        do {
            try await store.checkConnection(timeoutMs: connectTimeoutMs, password: dsn.password)
            try await store.migrate()
            try await store.measureClock()
        } catch {
            store.close()
            throw error
        }
        return store
    }

    private init(client: PostgresClient, target: String) {
        self.client = client
        self.target = target
        runner = Task { await client.run() }
    }

    deinit {
        listener.withLock { $0?.cancel() }
        runner.cancel()
    }

    /// Closes the connections (the store must not be used afterwards).
    public func close() {
        listener.withLock { $0?.cancel() }
        runner.cancel()
    }

    private func checkConnection(timeoutMs: Int, password: String?) async throws {
        let client = self.client
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.query("SELECT 1") }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(timeoutMs))
                    throw PostgresStoreError("no answer within \(timeoutMs) ms")
                }
                try await group.next()
                group.cancelAll()
            }
        } catch let e as PostgresStoreError {
            throw PostgresStoreError("cannot connect to PostgreSQL at \(target): \(e.message)")
        } catch {
            throw PostgresStoreError("cannot connect to PostgreSQL at \(target): \(PostgresFailure.connectReason(error, password: password).reason)")
        }
    }

    private func migrate() async throws {
        try await transaction { conn in
            // One host migrates at a time; the others wait, then find the schema current.
            try await conn.query("SELECT pg_advisory_xact_lock(7236041)", logger: logger)
            try await conn.query("CREATE TABLE IF NOT EXISTS nova_schema (version INT NOT NULL)", logger: logger)
            var version = 0
            for try await (v) in try await conn.query("SELECT version FROM nova_schema", logger: logger).decode(Int.self) { version = v }
            if version > Self.schemaVersion {
                throw PostgresStoreError("the database at \(target) has schema version \(version), newer than this nova-host's (\(Self.schemaVersion)): upgrade nova-host")
            }
            guard version < Self.schemaVersion else { return }
            for step in version..<Self.schemaVersion {
                for statement in Self.migrations[step] { try await conn.query(statement, logger: logger) }
            }
            try await conn.query("DELETE FROM nova_schema", logger: logger)
            try await conn.query("INSERT INTO nova_schema (version) VALUES (\(Self.schemaVersion))", logger: logger)
        }
    }

    /// A transaction whose closure's own error comes out as it was thrown (PostgresNIO wraps it
    /// in a `PostgresTransactionError`; the store contract rethrows the caller's error).
    func transaction(_ body: (PostgresConnection) async throws -> Void) async throws {
        do {
            try await client.withTransaction(logger: logger) { conn in try await body(conn) }
        } catch let e as PostgresTransactionError {
            if let inner = e.closureError { throw inner }
            throw PostgresStoreError("transaction on \(target) failed: \(e.beginError ?? e.commitError ?? e.rollbackError ?? e)")
        }
    }

    // MARK: Episode index

    static func insert(_ s: EpisodeSummary, on conn: PostgresConnection, logger: Logger) async throws {
        let finishedMs = s.finishedMs
        try await conn.query("DELETE FROM nova_episode_denials WHERE run_id = \(s.runId)", logger: logger)
        try await conn.query("""
            INSERT INTO nova_episodes (run_id, seq, hash, plan_name, principal, status, started_at, finished_at,
                                       duration_ms, calls, tokens, cost_micros, finished_ms, facts)
            VALUES (\(s.runId), \(s.seq), \(s.hash), \(s.planName), \(s.principal), \(s.status), \(s.startedAt), \(s.finishedAt),
                    \(s.durationMs), \(s.totals.calls), \(s.totals.tokens), \(s.totals.costMicros), \(finishedMs), 1)
            ON CONFLICT (run_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, plan_name = excluded.plan_name,
                principal = excluded.principal, status = excluded.status, started_at = excluded.started_at,
                finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, calls = excluded.calls,
                tokens = excluded.tokens, cost_micros = excluded.cost_micros, finished_ms = excluded.finished_ms, facts = 1
            """, logger: logger)
        for d in s.denials {
            try await conn.query("""
                INSERT INTO nova_episode_denials (run_id, principal, rule, tool, finished_ms)
                VALUES (\(s.runId), \(s.principal), \(d.rule), \(d.tool), \(finishedMs))
                """, logger: logger)
        }
    }

    public func indexEpisode(_ summary: EpisodeSummary) async throws {
        try await indexEpisodes([summary])
    }

    public func indexEpisodes(_ summaries: [EpisodeSummary]) async throws {
        if summaries.isEmpty { return }
        let logger = self.logger
        try await transaction { conn in
            for s in summaries {
                // An entry holding the same seq under another run id gives way (as SQLite's
                // INSERT OR REPLACE does for the UNIQUE seq).
                try await conn.query("DELETE FROM nova_episode_denials WHERE run_id IN (SELECT run_id FROM nova_episodes WHERE seq = \(s.seq) AND run_id <> \(s.runId))", logger: logger)
                try await conn.query("DELETE FROM nova_episodes WHERE seq = \(s.seq) AND run_id <> \(s.runId)", logger: logger)
                try await Self.insert(s, on: conn, logger: logger)
            }
        }
    }

    private typealias Row = (String, Int, String, String, String, String, String, String, Double, Int, Int, Int)
    private static let columns = "run_id, seq, hash, plan_name, principal, status, started_at, finished_at, duration_ms, calls, tokens, cost_micros"

    private static func summary(_ r: Row) -> EpisodeSummary {
        EpisodeSummary(runId: r.0, seq: r.1, hash: r.2, planName: r.3, principal: r.4, status: r.5, startedAt: r.6, finishedAt: r.7,
                       durationMs: r.8, totals: EpisodeTotals(calls: r.9, tokens: r.10, costMicros: r.11))
    }

    private func rows(_ query: PostgresQuery) async throws -> [EpisodeSummary] {
        var out: [EpisodeSummary] = []
        let sequence = try await client.query(query, logger: logger)
        for try await row in sequence.decode(Row.self) { out.append(Self.summary(row)) }
        return out
    }

    /// A nil filter matches everything (`$1::TEXT IS NULL`); an agent's runs are its goals (a
    /// goal's id is its run's id).
    public func listEpisodes(_ f: EpisodeFilter, limit: Int, offset: Int) async throws -> [EpisodeSummary] {
        try await rows("""
            SELECT \(unescaped: Self.columns) FROM nova_episodes
            WHERE (\(f.status)::TEXT IS NULL OR status = \(f.status)) AND (\(f.principal)::TEXT IS NULL OR principal = \(f.principal))
              AND (\(f.planName)::TEXT IS NULL OR plan_name = \(f.planName))
              AND (\(f.agentId)::TEXT IS NULL OR run_id IN (SELECT id FROM nova_goals WHERE agent_id = \(f.agentId)))
              AND (\(f.beforeSeq)::BIGINT IS NULL OR seq < \(f.beforeSeq))
            ORDER BY seq DESC LIMIT \(max(0, limit)) OFFSET \(max(0, offset))
            """)
    }

    public func countEpisodes(_ f: EpisodeFilter) async throws -> Int {
        var count = 0
        let sequence = try await client.query("""
            SELECT count(*)::BIGINT FROM nova_episodes
            WHERE (\(f.status)::TEXT IS NULL OR status = \(f.status)) AND (\(f.principal)::TEXT IS NULL OR principal = \(f.principal))
              AND (\(f.planName)::TEXT IS NULL OR plan_name = \(f.planName))
              AND (\(f.agentId)::TEXT IS NULL OR run_id IN (SELECT id FROM nova_goals WHERE agent_id = \(f.agentId)))
              AND (\(f.beforeSeq)::BIGINT IS NULL OR seq < \(f.beforeSeq))
            """, logger: logger)
        for try await (n) in sequence.decode(Int.self) { count = n }
        return count
    }

    public func episode(runId: String) async throws -> EpisodeSummary? {
        try await rows("""
            SELECT \(unescaped: Self.columns) FROM nova_episodes WHERE run_id = \(runId)
            """).first
    }

    public func indexedRunIds() async throws -> [String: Int] {
        var out: [String: Int] = [:]
        let sequence = try await client.query("SELECT run_id, seq FROM nova_episodes", logger: logger)
        for try await (id, seq) in sequence.decode((String, Int).self) { out[id] = seq }
        return out
    }

    public func removeEpisodes(runIds: [String]) async throws {
        if runIds.isEmpty { return }
        let logger = self.logger
        try await transaction { conn in
            try await conn.query("DELETE FROM nova_episodes WHERE run_id = ANY(\(runIds))", logger: logger)
            try await conn.query("DELETE FROM nova_episode_denials WHERE run_id = ANY(\(runIds))", logger: logger)
        }
    }

    public func replaceEpisodeIndex(with summaries: [EpisodeSummary]) async throws {
        let logger = self.logger
        try await transaction { conn in
            try await conn.query("DELETE FROM nova_episodes", logger: logger)
            try await conn.query("DELETE FROM nova_episode_denials", logger: logger)
            for s in summaries { try await Self.insert(s, on: conn, logger: logger) }
        }
    }

    // MARK: Policy state

    private static func read(keys: [String], on conn: PostgresConnection, logger: Logger, target: String) async throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        let sequence = try await conn.query("SELECT key, value FROM nova_policy_state WHERE key = ANY(\(keys))", logger: logger)
        for try await (key, text) in sequence.decode((String, String).self) {
            do { out[key] = try JSONValue.parse(text) } catch {
                throw PostgresStoreError("policy state \(key) in \(target) is not JSON: \(error)")
            }
        }
        return out
    }

    public func policyState(keys: [String]) async throws -> [String: JSONValue] {
        if keys.isEmpty { return [:] }
        let (logger, target) = (self.logger, self.target)
        return try await client.withConnection { conn in try await Self.read(keys: keys, on: conn, logger: logger, target: target) }
    }

    public func updatePolicyState(keys: [String], _ update: @escaping @Sendable ([String: JSONValue]) throws -> [String: JSONValue]) async throws {
        let (logger, target) = (self.logger, self.target)
        try await transaction { conn in
            for key in Set(keys).sorted() {
                try await conn.query("SELECT pg_advisory_xact_lock(hashtextextended(\("nova.policy/" + key), 0))", logger: logger)
            }
            let next = try update(try await Self.read(keys: keys, on: conn, logger: logger, target: target))
            for key in next.keys.sorted() {
                try await conn.query("""
                    INSERT INTO nova_policy_state (key, value, updated_at) VALUES (\(key), \(next[key]!.serialized(sortedKeys: true)), now())
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                    """, logger: logger)
            }
        }
    }
}

// MARK: - Episode chain

extension PostgresStore {
    /// The advisory lock that serializes appends on the chain head (any host, any connection).
    static let chainLock: Int64 = 7236042

    public func appendEpisode(body: JSONValue, runId: String, summary: @escaping @Sendable (EpisodeRef) -> EpisodeSummary) async throws -> EpisodeRef {
        let (logger, target) = (self.logger, self.target)
        let box = RefBox()
        try await transaction { conn in
            try await conn.query("SELECT pg_advisory_xact_lock(\(Self.chainLock))", logger: logger)
            var head: (Int, String) = (0, EpisodeFormat.genesisHash)
            for try await (seq, hash) in try await conn.query("SELECT seq, hash FROM nova_episode_chain ORDER BY seq DESC LIMIT 1", logger: logger)
                .decode((Int, String).self) { head = (seq, hash) }
            for try await _ in try await conn.query("SELECT 1 FROM nova_episode_chain WHERE run_id = \(runId)", logger: logger).decode(Int.self) {
                throw EpisodeError.duplicateRunId(runId)
            }
            let sealed = try EpisodeFormat.seal(body: body, runId: runId, seq: head.0 + 1, prevHash: head.1)
            try await conn.query("""
                INSERT INTO nova_episode_chain (seq, run_id, hash, prev_hash, bytes)
                VALUES (\(head.0 + 1), \(runId), \(sealed.hash), \(head.1), \(ByteBuffer(bytes: sealed.bytes)))
                """, logger: logger)
            let ref = EpisodeRef(runId: runId, seq: head.0 + 1, hash: sealed.hash, path: "\(target)#\(head.0 + 1)")
            try await Self.insert(summary(ref), on: conn, logger: logger)
            box.ref = ref
        }
        return box.ref!
    }

    public func episode(runId: String) async throws -> Episode {
        guard EpisodeFormat.isValidRunId(runId) else { throw EpisodeError.invalidRunId(runId) }
        let rows = try await client.query("SELECT seq, bytes FROM nova_episode_chain WHERE run_id = \(runId)", logger: logger)
        for try await (seq, bytes) in rows.decode((Int, ByteBuffer).self) {
            return EpisodeFormat.read(bytes: Array(buffer: bytes), runId: runId, location: "\(target)#\(seq)").episode
        }
        throw EpisodeError.notFound(runId: runId)
    }

    public func verifyEpisodes() async throws -> VerifyReport {
        var issues: [ChainIssue] = []
        var checked = 0
        var previous: (seq: Int, hash: String)? = nil
        var tip: EpisodeRef?
        let rows = try await client.query("SELECT seq, run_id, hash, prev_hash, bytes FROM nova_episode_chain ORDER BY seq", logger: logger)
        for try await (seq, runId, hash, prevHash, bytes) in rows.decode((Int, String, String, String, ByteBuffer).self) {
            checked += 1
            let (episode, problem) = EpisodeFormat.read(bytes: Array(buffer: bytes), runId: runId, location: "\(target)#\(seq)")
            let expectedSeq = (previous?.seq ?? 0) + 1
            if seq != expectedSeq {
                issues.append(ChainIssue(kind: .missing, seq: expectedSeq, runId: nil,
                                         detail: "no episode holds seq \(expectedSeq)\(seq > expectedSeq + 1 ? "–\(seq - 1)" : "")"))
            }
            if let problem {
                issues.append(ChainIssue(kind: problem, seq: seq, runId: runId, detail: episode.problem ?? problem.rawValue))
            } else if episode.ref.seq != seq || episode.ref.hash != hash || episode.prevHash != prevHash {
                issues.append(ChainIssue(kind: .changed, seq: seq, runId: runId,
                                         detail: "the row's seq, hash or prev_hash columns differ from the sealed episode"))
            }
            let expectedPrev = previous.map(\.hash) ?? EpisodeFormat.genesisHash
            if seq == expectedSeq, prevHash != expectedPrev {
                issues.append(ChainIssue(kind: .prevHashMismatch, seq: seq, runId: runId,
                                         detail: "prev_hash \(prevHash.prefix(16))… is not the hash of seq \(seq - 1) (\(expectedPrev.prefix(16))…)"))
            }
            previous = (seq, hash)
            tip = EpisodeRef(runId: runId, seq: seq, hash: hash, path: "\(target)#\(seq)")
        }
        return VerifyReport(checked: checked, tip: tip, issues: issues)
    }
}

/// Carries the appended episode's ref out of the transaction closure.
private final class RefBox: @unchecked Sendable {
    var ref: EpisodeRef?
}

/// A PostgreSQL store failure, with a message that names the server and never the password.
public struct PostgresStoreError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
