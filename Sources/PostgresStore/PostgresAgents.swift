import JSON
import Logging
import PostgresNIO
import Store

/// Agents, goals and memory in PostgreSQL (schema version 4): the same contract as the SQLite
/// store (`AgentStoreTests` runs on both). Memory is ranked with `ts_rank` over a generated
/// `tsvector` with a GIN index.
extension PostgresStore: AgentStore, MemoryStore {
    static let agentsMigration: [PostgresQuery] = [
        """
        CREATE TABLE nova_agents (
            id        TEXT PRIMARY KEY,
            namespace TEXT NOT NULL,
            name      TEXT NOT NULL,
            status    TEXT NOT NULL,
            version   BIGINT NOT NULL,
            document  JSONB NOT NULL
        )
        """,
        "CREATE UNIQUE INDEX nova_agents_live_name ON nova_agents(namespace, name) WHERE status <> 'deleted'",
        "CREATE INDEX nova_agents_by_status ON nova_agents(status, name)",
        """
        CREATE TABLE nova_agent_versions (
            agent_id TEXT NOT NULL,
            version  BIGINT NOT NULL,
            document JSONB NOT NULL,
            PRIMARY KEY (agent_id, version)
        )
        """,
        """
        CREATE TABLE nova_goals (
            seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id          TEXT NOT NULL UNIQUE,
            agent_id    TEXT NOT NULL,
            text        TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            deadline_ms BIGINT
        )
        """,
        "CREATE INDEX nova_goals_by_agent ON nova_goals(agent_id, seq)",
        """
        CREATE TABLE nova_memory (
            seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id            TEXT NOT NULL UNIQUE,
            owner         TEXT NOT NULL,
            type          TEXT NOT NULL,
            text          TEXT NOT NULL,
            meta          TEXT NOT NULL,
            tags          TEXT[] NOT NULL,
            source_run    TEXT,
            source_step   TEXT,
            created_at_ms BIGINT NOT NULL,
            expires_at_ms BIGINT,
            tsv           TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
        )
        """,
        "CREATE INDEX nova_memory_by_owner ON nova_memory(owner, created_at_ms)",
        "CREATE INDEX nova_memory_expiry ON nova_memory(expires_at_ms) WHERE expires_at_ms IS NOT NULL",
        "CREATE INDEX nova_memory_tsv ON nova_memory USING GIN (tsv)",
    ]

    // MARK: Agents

    private static func isUniqueViolation(_ error: any Error) -> Bool {
        (error as? PSQLError)?.serverInfo?[.sqlState] == "23505"
    }

    private func agents(_ query: PostgresQuery) async throws -> [Agent] {
        var out: [Agent] = []
        for try await (text) in try await client.query(query, logger: logger).decode(String.self) {
            guard let json = try? JSONValue.parse(text) else { throw AgentStoreError.corrupt("an agent row is not JSON") }
            out.append(try Agent(json: json))
        }
        return out
    }

    public func insertAgent(_ a: Agent) async throws {
        let doc = a.json.serialized(sortedKeys: true)
        let logger = self.logger
        do {
            try await transaction { conn in
                try await conn.query("""
                    INSERT INTO nova_agents (id, namespace, name, status, version, document)
                    VALUES (\(a.id), \(a.namespace), \(a.name), \(a.status.rawValue), \(a.version), \(doc)::JSONB)
                    """, logger: logger)
                try await conn.query("INSERT INTO nova_agent_versions (agent_id, version, document) VALUES (\(a.id), \(a.version), \(doc)::JSONB)",
                                     logger: logger)
            }
        } catch where Self.isUniqueViolation(error) {
            throw AgentStoreError.nameTaken(namespace: a.namespace, name: a.name)
        }
    }

    public func agent(id: String) async throws -> Agent? {
        try await agents("SELECT document::TEXT FROM nova_agents WHERE id = \(id)").first
    }

    public func agent(namespace: String, name: String) async throws -> Agent? {
        try await agents("SELECT document::TEXT FROM nova_agents WHERE namespace = \(namespace) AND name = \(name) AND status <> 'deleted'").first
    }

    public func listAgents(_ f: AgentFilter) async throws -> [Agent] {
        let (key, value) = (f.label?.key, f.label?.value)
        return try await agents("""
            SELECT document::TEXT FROM nova_agents
            WHERE (\(f.namespace)::TEXT IS NULL OR namespace = \(f.namespace))
              AND (CASE WHEN \(f.status?.rawValue)::TEXT IS NULL THEN status <> 'deleted' ELSE status = \(f.status?.rawValue) END)
              AND (\(key)::TEXT IS NULL OR document->'labels'->>\(key) = \(value))
              AND (\(f.principal)::TEXT IS NULL OR document->>'principal' = \(f.principal))
              AND (\(f.searchKey)::TEXT IS NULL OR strpos(lower(namespace || '/' || name), \(f.searchKey)) > 0 OR strpos(lower(id), \(f.searchKey)) > 0
                   OR EXISTS (SELECT 1 FROM jsonb_each_text(document->'labels') l WHERE strpos(lower(l.key || '=' || l.value), \(f.searchKey)) > 0))
            ORDER BY namespace, name, id LIMIT \(max(0, f.limit)) OFFSET \(max(0, f.offset))
            """)
    }

    public func countAgents(_ f: AgentFilter) async throws -> Int {
        let (key, value) = (f.label?.key, f.label?.value)
        var count = 0
        for try await (n) in try await client.query("""
            SELECT count(*)::BIGINT FROM nova_agents
            WHERE (\(f.namespace)::TEXT IS NULL OR namespace = \(f.namespace))
              AND (CASE WHEN \(f.status?.rawValue)::TEXT IS NULL THEN status <> 'deleted' ELSE status = \(f.status?.rawValue) END)
              AND (\(key)::TEXT IS NULL OR document->'labels'->>\(key) = \(value))
              AND (\(f.principal)::TEXT IS NULL OR document->>'principal' = \(f.principal))
              AND (\(f.searchKey)::TEXT IS NULL OR strpos(lower(namespace || '/' || name), \(f.searchKey)) > 0 OR strpos(lower(id), \(f.searchKey)) > 0
                   OR EXISTS (SELECT 1 FROM jsonb_each_text(document->'labels') l WHERE strpos(lower(l.key || '=' || l.value), \(f.searchKey)) > 0))
            """, logger: logger).decode(Int.self) { count = n }
        return count
    }

    public func replaceAgent(_ next: Agent, ifVersion: Int) async throws -> Bool {
        let doc = next.json.serialized(sortedKeys: true)
        let logger = self.logger
        do {
            return try await inTransaction { conn in
                var changed = false
                for try await _ in try await conn.query("""
                    UPDATE nova_agents SET namespace = \(next.namespace), name = \(next.name), status = \(next.status.rawValue),
                                           version = \(next.version), document = \(doc)::JSONB
                    WHERE id = \(next.id) AND version = \(ifVersion) RETURNING 1
                    """, logger: logger) { changed = true }
                guard changed else { return false }
                try await conn.query("INSERT INTO nova_agent_versions (agent_id, version, document) VALUES (\(next.id), \(next.version), \(doc)::JSONB)",
                                     logger: logger)
                return true
            }
        } catch where Self.isUniqueViolation(error) {
            throw AgentStoreError.nameTaken(namespace: next.namespace, name: next.name)
        }
    }

    public func agentVersions(id: String) async throws -> [Agent] {
        try await agents("SELECT document::TEXT FROM nova_agent_versions WHERE agent_id = \(id) ORDER BY version")
    }

    // MARK: Goals

    private func goals(_ query: PostgresQuery) async throws -> [Goal] {
        var out: [Goal] = []
        for try await (id, agent, text, created, deadline) in try await client.query(query, logger: logger)
            .decode((String, String, String, String, Int64?).self) {
            out.append(Goal(id: id, agentId: agent, text: text, createdAt: created, deadlineMs: deadline))
        }
        return out
    }

    public func insertGoal(_ g: Goal) async throws {
        try await client.query("""
            INSERT INTO nova_goals (id, agent_id, text, created_at, deadline_ms) VALUES (\(g.id), \(g.agentId), \(g.text), \(g.createdAt), \(g.deadlineMs))
            """, logger: logger)
    }

    public func goal(id: String) async throws -> Goal? {
        try await goals("SELECT id, agent_id, text, created_at, deadline_ms FROM nova_goals WHERE id = \(id)").first
    }

    public func goals(agentId: String, limit: Int, offset: Int) async throws -> [Goal] {
        try await goals("""
            SELECT id, agent_id, text, created_at, deadline_ms FROM nova_goals WHERE agent_id = \(agentId)
            ORDER BY seq DESC LIMIT \(max(0, limit)) OFFSET \(max(0, offset))
            """)
    }

    // MARK: Memory

    private static let memoryColumns = "id, owner, type, text, meta, tags, source_run, source_step, created_at_ms, expires_at_ms"
    private typealias MemoryRow = (String, String, String, String, String, [String], String?, String?, Int64, Int64?, Double)

    private func memoryRows(_ query: PostgresQuery) async throws -> [RecallHit] {
        var out: [RecallHit] = []
        for try await r in try await client.query(query, logger: logger).decode(MemoryRow.self) {
            let item = MemoryItem(id: r.0, owner: r.1, type: r.2, text: r.3, meta: (try? JSONValue.parse(r.4)) ?? .object([:]), tags: r.5,
                                  sourceRunId: r.6, sourceStepId: r.7, createdAtMs: r.8, expiresAtMs: r.9)
            out.append(RecallHit(item: item, score: r.10))
        }
        return out
    }

    private static func insert(_ m: MemoryItem) -> PostgresQuery {
        """
        INSERT INTO nova_memory (id, owner, type, text, meta, tags, source_run, source_step, created_at_ms, expires_at_ms)
        VALUES (\(m.id), \(m.owner), \(m.type), \(m.text), \(m.meta.serialized(sortedKeys: true)), \(m.tags),
                \(m.sourceRunId), \(m.sourceStepId), \(m.createdAtMs), \(m.expiresAtMs))
        """
    }

    public func putMemory(_ m: MemoryItem) async throws {
        try await client.query(Self.insert(m), logger: logger)
    }

    public func putMemories(_ items: [MemoryItem]) async throws {
        let logger = self.logger
        try await transaction { conn in for m in items { try await conn.query(Self.insert(m), logger: logger) } }
    }

    public func memory(id: String) async throws -> MemoryItem? {
        try await memoryRows("SELECT \(unescaped: Self.memoryColumns), 0::FLOAT8 FROM nova_memory WHERE id = \(id)").first?.item
    }

    /// `websearch_to_tsquery` accepts any text (words, "phrases", OR, -word), so PostgreSQL
    /// never refuses a recall query.
    public func recall(_ q: RecallQuery) async throws -> [RecallHit] {
        let types = q.types.isEmpty ? nil : q.types
        let text = q.text.flatMap { $0.isEmpty ? nil : $0 }
        // With text: best rank first; without: newest first.
        return try await memoryRows("""
            SELECT \(unescaped: Self.memoryColumns),
                   (CASE WHEN \(text)::TEXT IS NULL THEN 0 ELSE ts_rank(tsv, websearch_to_tsquery('english', \(text))) END)::FLOAT8 AS score
            FROM nova_memory
            WHERE (\(text)::TEXT IS NULL OR tsv @@ websearch_to_tsquery('english', \(text)))
              AND owner = \(q.owner) AND (expires_at_ms IS NULL OR expires_at_ms > \(q.nowMs))
              AND (\(types)::TEXT[] IS NULL OR type = ANY(\(types))) AND tags @> \(q.tags)
              AND (\(q.sinceMs)::BIGINT IS NULL OR created_at_ms >= \(q.sinceMs)) AND (\(q.untilMs)::BIGINT IS NULL OR created_at_ms < \(q.untilMs))
            ORDER BY score DESC, (CASE WHEN \(text)::TEXT IS NULL THEN -created_at_ms ELSE 0 END),
                     (CASE WHEN \(text)::TEXT IS NULL THEN -seq ELSE seq END)
            LIMIT \(max(0, q.limit)) OFFSET \(max(0, q.offset))
            """)
    }

    public func forgetMemory(id: String, owner: String) async throws -> Bool {
        var removed = false
        for try await _ in try await client.query("DELETE FROM nova_memory WHERE id = \(id) AND owner = \(owner) RETURNING 1", logger: logger) { removed = true }
        return removed
    }

    public func purgeExpiredMemory(nowMs: Int64) async throws -> Int {
        var n = 0
        for try await _ in try await client.query("DELETE FROM nova_memory WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= \(nowMs) RETURNING 1",
                                                  logger: logger) { n += 1 }
        return n
    }
}
