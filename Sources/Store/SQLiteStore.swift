import CSQLite
import Dispatch
import JSON
import Episodes
import HostSupport

/// The embedded `HostStore`: one SQLite database (system `libsqlite3`) under the data
/// directory, in WAL mode with a busy timeout, so several processes can share it.
///
/// Durability: policy-state transactions commit with `synchronous=FULL` (a budget charge that
/// was acknowledged survives a power loss). Episode-index writes commit with
/// `synchronous=NORMAL`: the index is rebuildable from the episode files, which are the source
/// of truth, and `EpisodeLog` repairs it on open.
///
/// The schema is migrated by `PRAGMA user_version` (see `migrations`).
public final class SQLiteStore: HostStore, @unchecked Sendable {
    /// The database file.
    public let path: String
    /// The schema version this code writes.
    public static let schemaVersion = 9
    /// The database file name `EpisodeLog` uses under the data directory.
    public static let defaultFileName = "nova.sqlite"

    /// Every statement runs on this serial queue, never on a thread of Swift's cooperative pool:
    /// a write may wait up to `busyTimeoutMs` for another process's lock.
    let queue = DispatchQueue(label: "nova.sqlite-store")
    let conn: SQLiteConnection
    private var synchronous = ""
    /// Index entries of runs already answered, written before the next statement sequence
    /// (`SQLiteDeferredIndex.swift`).
    let deferredIndex = DeferredIndexEntries()
    /// Wakes this process's workers when a job becomes runnable here (other processes poll).
    let jobWake = WakeSignal()
    /// Signalled when a running job's cancel is requested in this process.
    public let cancelRequests = WakeSignal()
    /// Wakes receivers waiting for messages (`SQLiteBus.swift`).
    let busWake = WakeSignal()
    let busWatcher: BusWatcher

    /// Schema migrations; entry `i` takes the schema from version `i` to `i + 1`.
    static let migrations: [String] = [
        """
        CREATE TABLE episodes (
            run_id      TEXT PRIMARY KEY,
            seq         INTEGER NOT NULL UNIQUE,
            hash        TEXT NOT NULL,
            plan_name   TEXT NOT NULL,
            principal   TEXT NOT NULL,
            status      TEXT NOT NULL,
            started_at  TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            duration_ms REAL NOT NULL,
            calls       INTEGER NOT NULL,
            tokens      INTEGER NOT NULL,
            cost_micros INTEGER NOT NULL
        );
        CREATE INDEX episodes_by_status ON episodes(status, seq);
        CREATE INDEX episodes_by_principal ON episodes(principal, seq);
        CREATE TABLE policy_state (
            key        TEXT PRIMARY KEY,
            value      TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """,
        // 2: the job queue (see JobQueueStore; JobRow.columns is the column order).
        """
        CREATE TABLE jobs (
            seq              INTEGER PRIMARY KEY AUTOINCREMENT,
            id               TEXT NOT NULL UNIQUE,
            kind             TEXT NOT NULL,
            queue            TEXT NOT NULL,
            payload          TEXT NOT NULL,
            priority         INTEGER NOT NULL,
            state            TEXT NOT NULL,
            attempt          INTEGER NOT NULL,
            max_attempts     INTEGER NOT NULL,
            backoff_base_ms  INTEGER NOT NULL,
            backoff_max_ms   INTEGER NOT NULL,
            run_at_ms        INTEGER NOT NULL,
            unique_key       TEXT,
            last_error       TEXT,
            worker           TEXT,
            lease_until_ms   INTEGER,
            started_at_ms    INTEGER,
            cancel_requested INTEGER NOT NULL,
            created_at_ms    INTEGER NOT NULL,
            updated_at_ms    INTEGER NOT NULL,
            finished_at_ms   INTEGER,
            result           TEXT,
            attempts         TEXT NOT NULL
        );
        CREATE INDEX jobs_runnable ON jobs(queue, priority DESC, run_at_ms, seq) WHERE state IN ('available', 'retryable');
        CREATE INDEX jobs_leases ON jobs(lease_until_ms) WHERE state = 'running';
        CREATE INDEX jobs_by_state ON jobs(state, seq);
        CREATE UNIQUE INDEX jobs_pending_unique_key ON jobs(unique_key)
            WHERE unique_key IS NOT NULL AND state IN ('available', 'retryable', 'running');
        """,
        // 3: agents (each version kept), their goals, and their memory with a full-text index.
        """
        CREATE TABLE agents (
            id         TEXT PRIMARY KEY,
            namespace  TEXT NOT NULL,
            name       TEXT NOT NULL,
            status     TEXT NOT NULL,
            version    INTEGER NOT NULL,
            document   TEXT NOT NULL
        );
        CREATE UNIQUE INDEX agents_live_name ON agents(namespace, name) WHERE status <> 'deleted';
        CREATE INDEX agents_by_status ON agents(status, name);
        CREATE TABLE agent_versions (
            agent_id   TEXT NOT NULL,
            version    INTEGER NOT NULL,
            document   TEXT NOT NULL,
            PRIMARY KEY (agent_id, version)
        );
        CREATE TABLE goals (
            seq         INTEGER PRIMARY KEY AUTOINCREMENT,
            id          TEXT NOT NULL UNIQUE,
            agent_id    TEXT NOT NULL,
            text        TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            deadline_ms INTEGER
        );
        CREATE INDEX goals_by_agent ON goals(agent_id, seq);
        CREATE TABLE memory (
            rowid         INTEGER PRIMARY KEY AUTOINCREMENT,
            id            TEXT NOT NULL UNIQUE,
            owner         TEXT NOT NULL,
            type          TEXT NOT NULL,
            text          TEXT NOT NULL,
            meta          TEXT NOT NULL,
            tags          TEXT NOT NULL,
            source_run    TEXT,
            source_step   TEXT,
            created_at_ms INTEGER NOT NULL,
            expires_at_ms INTEGER
        );
        CREATE INDEX memory_by_owner ON memory(owner, created_at_ms);
        CREATE INDEX memory_expiry ON memory(expires_at_ms) WHERE expires_at_ms IS NOT NULL;
        CREATE VIRTUAL TABLE memory_fts USING fts5(text, content='memory', content_rowid='rowid');
        CREATE TRIGGER memory_fts_insert AFTER INSERT ON memory BEGIN
            INSERT INTO memory_fts(rowid, text) VALUES (new.rowid, new.text);
        END;
        CREATE TRIGGER memory_fts_delete AFTER DELETE ON memory BEGIN
            INSERT INTO memory_fts(memory_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        END;
        """,
        // 4: agents' versioned state and its change log (SQLiteState.swift).
        """
        CREATE TABLE agent_state (
            scope      TEXT NOT NULL,
            key        TEXT NOT NULL,
            value      TEXT NOT NULL,
            version    INTEGER NOT NULL,
            revision   INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (scope, key)
        );
        CREATE TABLE state_changes (
            revision INTEGER PRIMARY KEY AUTOINCREMENT,
            scope    TEXT NOT NULL,
            key      TEXT NOT NULL,
            op       TEXT NOT NULL,
            value    TEXT,
            version  INTEGER NOT NULL
        );
        CREATE INDEX state_changes_by_scope ON state_changes(scope, revision);
        CREATE TABLE state_meta (compacted_through INTEGER NOT NULL);
        INSERT INTO state_meta VALUES (0);
        """,
        // 5: the message bus (SQLiteBus.swift).
        busMigration,
        // 6: templates and approval requests (SQLiteTemplatesApprovals.swift).
        templatesApprovalsMigration,
        // 7: the control-plane audit log (SQLiteAudit.swift).
        auditMigration,
        // 8: end times and denials in the episode index, for aggregates (SQLiteEpisodeAggregates.swift).
        episodeFactsMigration,
        // 9: the runs list filtered by plan (newest first) reads an index, not every episode.
        "CREATE INDEX episodes_by_plan ON episodes(plan_name, seq);",
    ]

    /// Opens (creating and migrating if needed) the database at `path`; its directory must exist.
    /// - Parameter busyTimeoutMs: how long to wait for another connection's write lock.
    public init(path: String, busyTimeoutMs: Int32 = 15_000) throws {
        self.path = path
        busWatcher = BusWatcher(path: path, wake: busWake)
        conn = try SQLiteConnection(path: path)
        sqlite3_busy_timeout(conn.db, busyTimeoutMs)
        let mode = try conn.query("PRAGMA journal_mode=WAL").first?.first?.text ?? ""
        if mode.lowercased() != "wal" {
            throw SQLiteError(code: SQLITE_ERROR, message: "journal_mode is \(mode), not wal", context: "PRAGMA journal_mode=WAL")
        }
        try setSynchronous("FULL")
        try migrate()
    }

    func setSynchronous(_ level: String) throws {
        if synchronous == level { return }
        try conn.exec("PRAGMA synchronous=\(level)")
        synchronous = level
    }

    private func migrate() throws {
        func version() throws -> Int { try conn.query("PRAGMA user_version").first?.first?.int ?? 0 }
        if try version() == Self.schemaVersion { return }
        try conn.immediateTransaction {
            let v = try version()  // re-read under the write lock: another process may have migrated
            if v > Self.schemaVersion {
                throw SQLiteError(code: SQLITE_ERROR, message: "database schema version \(v) is newer than this host's (\(Self.schemaVersion))",
                                  context: "migrate \(path)")
            }
            for step in v..<Self.schemaVersion {
                try conn.exec(Self.migrations[step])
            }
            try conn.exec("PRAGMA user_version=\(Self.schemaVersion)")
        }
    }

    /// Runs `body` on the store's queue (one statement sequence at a time), after the index
    /// entries of runs already answered (`indexDeferred`): a read finds every such run.
    func onConnection<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                writeDeferredIndex()
                continuation.resume(with: Result { try body() })
            }
        }
    }

    /// A write transaction that need not survive a power loss (`synchronous=NORMAL`: it is
    /// atomic, but the last commits may roll back if the machine loses power). For changes
    /// whose loss only repeats work — a bus lease or ack lost means the message is delivered
    /// again, which at-least-once delivery allows.
    @discardableResult
    func writeRelaxed<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await onConnection { [self] in
            try setSynchronous("NORMAL")
            return try conn.immediateTransaction(body)
        }
    }

    /// A write transaction on the store's queue, durable on return.
    @discardableResult
    func write<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await onConnection { [self] in
            try setSynchronous("FULL")
            return try conn.immediateTransaction(body)
        }
    }

    // MARK: Episode index

    /// Where an index entry goes; `INSERT OR REPLACE` (an entry that replaces one) or
    /// `INSERT` (a new one) in front.
    private static let intoEpisodes = """
        INTO episodes (run_id, seq, hash, plan_name, principal, status, started_at, finished_at,
                       duration_ms, calls, tokens, cost_micros, finished_ms, facts)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
        """
    private static let insertSQL = "INSERT OR REPLACE " + intoEpisodes
    private static let insertNewSQL = "INSERT " + intoEpisodes
    private static let columns = "run_id, seq, hash, plan_name, principal, status, started_at, finished_at, duration_ms, calls, tokens, cost_micros"

    private func insert(_ s: EpisodeSummary) throws {
        let finishedMs = s.finishedMs
        let row: [SQLValue] = [
            .text(s.runId), .int(Int64(s.seq)), .text(s.hash), .text(s.planName), .text(s.principal), .text(s.status),
            .text(s.startedAt), .text(s.finishedAt), .double(s.durationMs), .int(Int64(s.totals.calls)),
            .int(Int64(s.totals.tokens)), .int(Int64(s.totals.costMicros)), .int(finishedMs),
        ]
        // Nearly every entry is new (a fresh run id at the next seq): one plain INSERT. An entry
        // that replaces one (a re-index, or a seq taken again after recovery cut a torn tail)
        // fails a UNIQUE constraint — which undoes only that statement — and is written by the
        // replacing path, which also drops the denials of the entries it replaces.
        do {
            try conn.query(Self.insertNewSQL, row)
        } catch let e as SQLiteError where e.code & 0xff == SQLITE_CONSTRAINT {
            try conn.query("DELETE FROM episode_denials WHERE run_id = ? OR run_id IN (SELECT run_id FROM episodes WHERE seq = ?)",
                           [.text(s.runId), .int(Int64(s.seq))])
            try conn.query(Self.insertSQL, row)
        }
        for d in s.denials {
            try conn.query("INSERT INTO episode_denials (run_id, principal, rule, tool, finished_ms) VALUES (?, ?, ?, ?, ?)",
                           [.text(s.runId), .text(s.principal), .text(d.rule), .text(d.tool), .int(finishedMs)])
        }
    }

    private static func summary(_ row: [SQLValue]) -> EpisodeSummary {
        EpisodeSummary(runId: row[0].text ?? "", seq: row[1].int ?? 0, hash: row[2].text ?? "", planName: row[3].text ?? "",
                       principal: row[4].text ?? "", status: row[5].text ?? "", startedAt: row[6].text ?? "",
                       finishedAt: row[7].text ?? "", durationMs: row[8].double ?? 0,
                       totals: EpisodeTotals(calls: row[9].int ?? 0, tokens: row[10].int ?? 0, costMicros: row[11].int ?? 0))
    }

    public func indexEpisode(_ summary: EpisodeSummary) async throws {
        try await indexEpisodes([summary])
    }

    public func indexEpisodes(_ summaries: [EpisodeSummary]) async throws {
        if summaries.isEmpty { return }
        try await onConnection { [self] in try indexEpisodesOnQueue(summaries) }
    }

    /// Indexes `summaries` in one transaction, now: only on the store's queue.
    func indexEpisodesOnQueue(_ summaries: [EpisodeSummary]) throws {
        if summaries.isEmpty { return }
        try setSynchronous("NORMAL")
        try conn.immediateTransaction { for s in summaries { try insert(s) } }
    }

    private static func filter(_ f: EpisodeFilter) -> (String, [SQLValue]) {
        var clauses: [String] = []
        var params: [SQLValue] = []
        if let status = f.status { clauses.append("status = ?"); params.append(.text(status)) }
        if let principal = f.principal { clauses.append("principal = ?"); params.append(.text(principal)) }
        if let plan = f.planName { clauses.append("plan_name = ?"); params.append(.text(plan)) }
        // An agent's runs are its goals (a goal's id is its run's id).
        if let agent = f.agentId { clauses.append("run_id IN (SELECT id FROM goals WHERE agent_id = ?)"); params.append(.text(agent)) }
        if let before = f.beforeSeq { clauses.append("seq < ?"); params.append(.int(Int64(before))) }
        return (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "), params)
    }

    public func listEpisodes(_ f: EpisodeFilter, limit: Int, offset: Int) async throws -> [EpisodeSummary] {
        let (whereSQL, params) = Self.filter(f)
        let sql = "SELECT \(Self.columns) FROM episodes\(whereSQL) ORDER BY seq DESC LIMIT ? OFFSET ?"
        return try await onConnection { [self] in
            try conn.query(sql, params + [.int(Int64(max(0, limit))), .int(Int64(max(0, offset)))]).map(Self.summary)
        }
    }

    public func countEpisodes(_ f: EpisodeFilter) async throws -> Int {
        let (whereSQL, params) = Self.filter(f)
        return try await onConnection { [self] in try conn.query("SELECT count(*) FROM episodes\(whereSQL)", params).first?.first?.int ?? 0 }
    }

    public func episode(runId: String) async throws -> EpisodeSummary? {
        try await onConnection { [self] in
            try conn.query("SELECT \(Self.columns) FROM episodes WHERE run_id = ?", [.text(runId)]).first.map(Self.summary)
        }
    }

    public func indexedRunIds() async throws -> [String: Int] {
        try await onConnection { [self] in
            var out: [String: Int] = [:]
            for row in try conn.query("SELECT run_id, seq FROM episodes") {
                if let id = row[0].text, let seq = row[1].int { out[id] = seq }
            }
            return out
        }
    }

    public func removeEpisodes(runIds: [String]) async throws {
        if runIds.isEmpty { return }
        try await onConnection { [self] in
            try setSynchronous("NORMAL")
            try conn.immediateTransaction {
                for id in runIds {
                    try conn.query("DELETE FROM episodes WHERE run_id = ?", [.text(id)])
                    try conn.query("DELETE FROM episode_denials WHERE run_id = ?", [.text(id)])
                }
            }
        }
    }

    public func replaceEpisodeIndex(with summaries: [EpisodeSummary]) async throws {
        try await onConnection { [self] in
            try setSynchronous("NORMAL")
            try conn.immediateTransaction {
                try conn.exec("DELETE FROM episodes; DELETE FROM episode_denials")
                for s in summaries { try insert(s) }
            }
        }
    }

    // MARK: Policy state

    private func read(keys: [String]) throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for key in keys {
            guard let text = try conn.query("SELECT value FROM policy_state WHERE key = ?", [.text(key)]).first?.first?.text else { continue }
            do {
                out[key] = try JSONValue.parse(text)
            } catch {
                throw SQLiteError(code: SQLITE_CORRUPT, message: "policy_state value of \(key) is not JSON: \(error)", context: "read policy state")
            }
        }
        return out
    }

    public func policyState(keys: [String]) async throws -> [String: JSONValue] {
        try await onConnection { [self] in
            try conn.exec("BEGIN")
            defer { try? conn.exec("COMMIT") }
            return try read(keys: keys)
        }
    }

    public func updatePolicyState(keys: [String], _ update: @escaping @Sendable ([String: JSONValue]) throws -> [String: JSONValue]) async throws {
        try await onConnection { [self] in
            try setSynchronous("FULL")
            try conn.immediateTransaction {
                let current = try read(keys: keys)
                let next = try update(current)
                let now = Timestamps.now()
                for key in next.keys.sorted() {
                    try conn.query("INSERT INTO policy_state (key, value, updated_at) VALUES (?, ?, ?) "
                                   + "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                                   [.text(key), .text(next[key]!.serialized(sortedKeys: true)), .text(now)])
                }
            }
        }
    }
}
