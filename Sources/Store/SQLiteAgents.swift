import CSQLite
import JSON
import HostSupport

/// Agents, goals and memory in the embedded store (schema version 3).
extension SQLiteStore: AgentStore, MemoryStore {
    // MARK: Agents

    private static func agent(_ row: [SQLValue]) throws -> Agent {
        guard let text = row.first?.text, let json = try? JSONValue.parse(text) else { throw AgentStoreError.corrupt("an agent row is not JSON") }
        return try Agent(json: json)
    }

    /// Runs `body`, turning a unique-index violation on the live name into `nameTaken`.
    @discardableResult
    private func namingConflicts<T>(_ a: Agent, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as SQLiteError where e.code & 0xff == SQLITE_CONSTRAINT {
            throw AgentStoreError.nameTaken(namespace: a.namespace, name: a.name)
        }
    }

    public func insertAgent(_ a: Agent) async throws {
        let doc = a.json.serialized(sortedKeys: true)
        try await write { [self] in
            try namingConflicts(a) {
                try conn.query("INSERT INTO agents (id, namespace, name, status, version, document) VALUES (?, ?, ?, ?, ?, ?)",
                               [.text(a.id), .text(a.namespace), .text(a.name), .text(a.status.rawValue), .int(Int64(a.version)), .text(doc)])
            }
            try conn.query("INSERT INTO agent_versions (agent_id, version, document) VALUES (?, ?, ?)", [.text(a.id), .int(Int64(a.version)), .text(doc)])
        }
    }

    public func agent(id: String) async throws -> Agent? {
        try await onConnection { [self] in try conn.query("SELECT document FROM agents WHERE id = ?", [.text(id)]).first.map(Self.agent) }
    }

    public func agent(namespace: String, name: String) async throws -> Agent? {
        try await onConnection { [self] in
            try conn.query("SELECT document FROM agents WHERE namespace = ? AND name = ? AND status <> 'deleted'",
                           [.text(namespace), .text(name)]).first.map(Self.agent)
        }
    }

    private static func filter(_ f: AgentFilter) -> (String, [SQLValue]) {
        var clauses: [String] = []
        var params: [SQLValue] = []
        if let ns = f.namespace { clauses.append("namespace = ?"); params.append(.text(ns)) }
        if let st = f.status { clauses.append("status = ?"); params.append(.text(st.rawValue)) } else { clauses.append("status <> 'deleted'") }
        if let (k, v) = f.label {
            clauses.append("json_extract(document, ?) = ?")
            params += [.text("$.labels.\"" + k.replacingOccurrences(of: "\"", with: "") + "\""), .text(v)]
        }
        if let p = f.principal { clauses.append("json_extract(document, '$.principal') = ?"); params.append(.text(p)) }
        if let q = f.searchKey {
            clauses.append("""
                (instr(lower(namespace || '/' || name), ?1) > 0 OR instr(lower(id), ?1) > 0
                 OR EXISTS (SELECT 1 FROM json_each(agents.document, '$.labels') l WHERE instr(lower(l.key || '=' || l.value), ?1) > 0))
                """.replacingOccurrences(of: "?1", with: "?\(params.count + 1)"))
            params.append(.text(q))
        }
        return (" WHERE " + clauses.joined(separator: " AND "), params)
    }

    public func listAgents(_ f: AgentFilter) async throws -> [Agent] {
        let (w, params) = Self.filter(f)
        return try await onConnection { [self] in
            try conn.query("SELECT document FROM agents\(w) ORDER BY namespace, name, id LIMIT ? OFFSET ?",
                           params + [.int(Int64(max(0, f.limit))), .int(Int64(max(0, f.offset)))]).map(Self.agent)
        }
    }

    public func countAgents(_ f: AgentFilter) async throws -> Int {
        let (w, params) = Self.filter(f)
        return try await onConnection { [self] in try conn.query("SELECT count(*) FROM agents\(w)", params).first?.first?.int ?? 0 }
    }

    public func replaceAgent(_ next: Agent, ifVersion: Int) async throws -> Bool {
        let doc = next.json.serialized(sortedKeys: true)
        return try await write { [self] in
            try namingConflicts(next) {
                try conn.query("UPDATE agents SET namespace = ?, name = ?, status = ?, version = ?, document = ? WHERE id = ? AND version = ?",
                               [.text(next.namespace), .text(next.name), .text(next.status.rawValue), .int(Int64(next.version)), .text(doc),
                                .text(next.id), .int(Int64(ifVersion))])
            }
            guard sqlite3_changes(conn.db) == 1 else { return false }
            try conn.query("INSERT INTO agent_versions (agent_id, version, document) VALUES (?, ?, ?)",
                           [.text(next.id), .int(Int64(next.version)), .text(doc)])
            return true
        }
    }

    public func agentVersions(id: String) async throws -> [Agent] {
        try await onConnection { [self] in
            try conn.query("SELECT document FROM agent_versions WHERE agent_id = ? ORDER BY version", [.text(id)]).map(Self.agent)
        }
    }

    // MARK: Goals

    private static func goal(_ r: [SQLValue]) -> Goal {
        Goal(id: r[0].text ?? "", agentId: r[1].text ?? "", text: r[2].text ?? "", createdAt: r[3].text ?? "", deadlineMs: r[4].int.map(Int64.init))
    }

    public func insertGoal(_ g: Goal) async throws {
        try await write { [self] in
            try conn.query("INSERT INTO goals (id, agent_id, text, created_at, deadline_ms) VALUES (?, ?, ?, ?, ?)",
                           [.text(g.id), .text(g.agentId), .text(g.text), .text(g.createdAt), g.deadlineMs.map { .int($0) } ?? .null])
        }
    }

    public func goal(id: String) async throws -> Goal? {
        try await onConnection { [self] in
            try conn.query("SELECT id, agent_id, text, created_at, deadline_ms FROM goals WHERE id = ?", [.text(id)]).first.map(Self.goal)
        }
    }

    public func goals(agentId: String, limit: Int, offset: Int) async throws -> [Goal] {
        try await onConnection { [self] in
            try conn.query("SELECT id, agent_id, text, created_at, deadline_ms FROM goals WHERE agent_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
                           [.text(agentId), .int(Int64(max(0, limit))), .int(Int64(max(0, offset)))]).map(Self.goal)
        }
    }

    // MARK: Memory

    private static let memoryColumns = "m.id, m.owner, m.type, m.text, m.meta, m.tags, m.source_run, m.source_step, m.created_at_ms, m.expires_at_ms"

    private static func item(_ r: [SQLValue]) -> MemoryItem {
        MemoryItem(id: r[0].text ?? "", owner: r[1].text ?? "", type: r[2].text ?? "", text: r[3].text ?? "",
                   meta: (try? JSONValue.parse(r[4].text ?? "{}")) ?? .object([:]),
                   tags: ((try? JSONValue.parse(r[5].text ?? "[]"))?.arrayValue ?? []).compactMap(\.stringValue),
                   sourceRunId: r[6].text, sourceStepId: r[7].text, createdAtMs: Int64(r[8].int ?? 0), expiresAtMs: r[9].int.map(Int64.init))
    }

    private func insert(_ m: MemoryItem) throws {
        try conn.query("""
            INSERT INTO memory (id, owner, type, text, meta, tags, source_run, source_step, created_at_ms, expires_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(m.id), .text(m.owner), .text(m.type), .text(m.text), .text(m.meta.serialized(sortedKeys: true)),
                  .text(JSONValue.array(m.tags.map(JSONValue.string)).serialized()), m.sourceRunId.map { .text($0) } ?? .null,
                  m.sourceStepId.map { .text($0) } ?? .null, .int(m.createdAtMs), m.expiresAtMs.map { .int($0) } ?? .null])
    }

    public func putMemory(_ m: MemoryItem) async throws {
        try await putMemories([m])
    }

    public func putMemories(_ items: [MemoryItem]) async throws {
        try await write { [self] in for m in items { try insert(m) } }
    }

    public func memory(id: String) async throws -> MemoryItem? {
        try await onConnection { [self] in try conn.query("SELECT \(Self.memoryColumns) FROM memory m WHERE m.id = ?", [.text(id)]).first.map(Self.item) }
    }

    public func recall(_ q: RecallQuery) async throws -> [RecallHit] {
        var clauses = ["m.owner = ?", "(m.expires_at_ms IS NULL OR m.expires_at_ms > ?)"]
        var params: [SQLValue] = [.text(q.owner), .int(q.nowMs)]
        if !q.types.isEmpty {
            clauses.append("m.type IN (\(Array(repeating: "?", count: q.types.count).joined(separator: ", ")))")
            params += q.types.map { .text($0) }
        }
        for tag in q.tags {
            clauses.append("EXISTS (SELECT 1 FROM json_each(m.tags) WHERE json_each.value = ?)")
            params.append(.text(tag))
        }
        if let s = q.sinceMs { clauses.append("m.created_at_ms >= ?"); params.append(.int(s)) }
        if let u = q.untilMs { clauses.append("m.created_at_ms < ?"); params.append(.int(u)) }
        let sql: String
        if let text = q.text, !text.isEmpty {
            // Web-search syntax, as PostgreSQL reads it; a query without a term matches nothing.
            guard let match = FTS5WebSearch.matchExpression(text) else { return [] }
            // bm25 is lower for better matches: the score is its negation.
            // Rank rowids only (the sorter carries two values per match, not whole rows), then
            // read the page's rows.
            sql = "SELECT \(Self.memoryColumns), -t.b AS score FROM (SELECT memory_fts.rowid AS r, bm25(memory_fts) AS b "
                + "FROM memory_fts JOIN memory m ON m.rowid = memory_fts.rowid WHERE memory_fts MATCH ? AND " + clauses.joined(separator: " AND ")
                + " ORDER BY b LIMIT ? OFFSET ?) t JOIN memory m ON m.rowid = t.r ORDER BY t.b"
            params.insert(.text(match), at: 0)
        } else {
            sql = "SELECT \(Self.memoryColumns), 0.0 AS score FROM memory m WHERE " + clauses.joined(separator: " AND ")
                + " ORDER BY m.created_at_ms DESC, m.rowid DESC LIMIT ? OFFSET ?"
        }
        params += [.int(Int64(max(0, q.limit))), .int(Int64(max(0, q.offset)))]
        let all = params
        let hasText = !(q.text ?? "").isEmpty
        return try await onConnection { [self] in
            do {
                return try conn.query(sql, all).map { RecallHit(item: Self.item($0), score: $0[10].double ?? Double($0[10].int ?? 0)) }
            } catch let e as SQLiteError where hasText && e.code == SQLITE_ERROR {
                // The statement is fixed and the MATCH text is built to parse: kept so that a
                // case FTS5WebSearch missed is the caller's 422, not a server error.
                throw RecallQueryError("the recall query cannot be parsed: \(e.message) (words, \"phrases\", OR, -word, prefix*)")
            }
        }
    }

    public func forgetMemory(id: String, owner: String) async throws -> Bool {
        try await write { [self] in
            try conn.query("DELETE FROM memory WHERE id = ? AND owner = ?", [.text(id), .text(owner)])
            return sqlite3_changes(conn.db) == 1
        }
    }

    public func purgeExpiredMemory(nowMs: Int64) async throws -> Int {
        try await write { [self] in
            try conn.query("DELETE FROM memory WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?", [.int(nowMs)])
            return Int(sqlite3_changes(conn.db))
        }
    }
}
