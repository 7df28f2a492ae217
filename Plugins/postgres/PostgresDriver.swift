import DriverKit
import DriverSupport
import Foundation
import JSON
import PostgresNIO
import PostgresSupport
import Synchronization

/// `postgres`: parameterized SQL over PostgresNIO, read-only by default.
///
/// Tools:
/// - `postgres.query` — one statement with `$1…` parameters in a `READ ONLY` transaction (rolled
///   back afterwards, so session settings a statement changes do not leak into the pool);
///   `allow_write: true` runs it `READ WRITE` and commits — the policy condition
///   `postgres_read_only` decides who may ask for that.
/// - `postgres.execute` — one writing statement (INSERT/UPDATE/DELETE/DDL…), committed;
///   reports the rows affected; annotated destructive.
/// - `postgres.schema` — tables, views and their columns (from pg_catalog).
///
/// Every statement gets `statement_timeout` from the call's deadline (a little shorter, so the
/// server's own error arrives first). Input never becomes SQL text: parameters travel as bind
/// values. Results are typed JSON (see `PGDecode`), capped at `max_rows` with `truncated`.
///
/// Instance configuration:
///
/// | key | meaning |
/// |---|---|
/// | `dsn` | PostgreSQL DSN (URL or key=value); default: the `NOVA_PG_DSN` environment variable. Never logged. |
/// | `max_connections` | pool size (default 4) |
/// | `max_rows` | cap and default for `max_rows` (default 1000) |
/// | `default_timeout_ms` | statement and call timeout without a deadline (default 30000) |
/// | `connect_timeout_ms` | connection timeout (default 5000) |
/// | `read_only` | `true` refuses `postgres.execute` and `allow_write` in this instance |
public struct PostgresDriver: NovaDriver {
    /// The manifest: `postgres.query`, `postgres.execute`, `postgres.schema`.
    public static let manifest: JSONValue = [
        "name": "postgres",
        "version": "1.0.0",
        "description": "PostgreSQL: parameterized queries in read-only transactions, explicit writes, schema listing. Timeouts from the call deadline, row caps, typed JSON results.",
        "concurrency": "thread_safe",
        "permissions": ["network": true, "filesystem": false, "process": false],
        "tools": [
            [
                "name": "query",
                "description": "Run one parameterized SQL statement ($1, $2… bound from params) in a READ ONLY transaction and return typed rows. allow_write: true runs it READ WRITE and commits (policy decides whether that is allowed).",
                "inputSchema": queryInput,
                "outputSchema": rowsOutput(extra: ["read_only": ["type": "boolean"]], required: ["read_only"]),
                "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false],
                "policyInputs": ["allow_write": "/allow_write"],
                "examples": [
                    ["input": ["sql": "select $1::int + 1 as answer", "params": [41]]],
                    ["input": ["sql": "create temporary table nova_example (i int)"], "error": "sql_error",
                     "description": "a write inside the read-only transaction is refused by the server"],
                ],
            ],
            [
                "name": "execute",
                "description": "Run one writing SQL statement (INSERT, UPDATE, DELETE, DDL…) with $n parameters in a READ WRITE transaction and commit. Returns the command, rows affected and any RETURNING rows.",
                "inputSchema": executeInput,
                "outputSchema": rowsOutput(extra: ["command": ["type": "string"], "rows_affected": ["type": ["integer", "null"]]],
                                           required: ["command", "rows_affected"]),
                "annotations": ["readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": false],
                "examples": [["input": ["sql": "create temporary table if not exists nova_example (i int)"]]],
            ],
            [
                "name": "schema",
                "description": "List tables, views and their columns (type, nullability, default, primary key, comments), optionally for one schema or one table.",
                "inputSchema": schemaInput,
                "outputSchema": schemaOutput,
                "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false],
                "examples": [["input": ["schema": "public"]]],
            ],
        ],
    ]

    static let sqlProperties: [String: JSONValue] = [
        "sql": ["type": "string", "minLength": 1, "maxLength": 1_000_000,
                "description": "Exactly one SQL statement. Use $1, $2… for values; never build SQL text from data."],
        "params": ["type": "array", "maxItems": 65535,
                   "description": "Values for $1, $2…: strings, numbers, booleans, null; arrays become PostgreSQL arrays, objects JSON. Types are inferred by the server (cast with $1::type when needed)."],
        "max_rows": ["type": "integer", "minimum": 1, "maximum": 100_000, "description": "Return at most this many rows (capped by the instance); truncated tells whether more existed."],
        "timeout_ms": ["type": "integer", "minimum": 1, "maximum": 3_600_000, "description": "Timeout; the step's deadline wins if earlier. Becomes statement_timeout."],
        "row_format": ["enum": ["object", "array"], "default": "object",
                       "description": "Rows as objects keyed by column name (repeated names get _2, _3…) or as arrays in column order."],
    ]

    static let queryInput: JSONValue = [
        "type": "object", "additionalProperties": false, "required": ["sql"],
        "properties": .object(sqlProperties.merging([
            "allow_write": ["type": "boolean", "default": false,
                            "description": "Run READ WRITE and commit. Denied by policies with postgres_read_only."],
        ]) { a, _ in a }),
    ]

    static let executeInput: JSONValue = [
        "type": "object", "additionalProperties": false, "required": ["sql"],
        "properties": .object(sqlProperties),
    ]

    static func rowsOutput(extra: [String: JSONValue], required: [String]) -> JSONValue {
        var props: [String: JSONValue] = [
            "columns": ["type": "array", "items": [
                "type": "object", "required": ["name", "type", "type_oid"],
                "properties": ["name": ["type": "string"], "type": ["type": "string"], "type_oid": ["type": "integer"]],
            ]],
            "rows": ["type": "array", "items": ["type": ["object", "array"]]],
            "row_count": ["type": "integer", "minimum": 0, "description": "Rows returned (not counting those cut by max_rows)."],
            "truncated": ["type": "boolean", "description": "More rows existed than max_rows."],
            "elapsed_ms": ["type": "number", "minimum": 0],
        ]
        for (k, v) in extra { props[k] = v }
        return ["type": "object", "required": .array((["columns", "rows", "row_count", "truncated", "elapsed_ms"] + required).map { .string($0) }),
                "properties": .object(props)]
    }

    static let schemaInput: JSONValue = [
        "type": "object", "additionalProperties": false,
        "properties": [
            "schema": ["type": "string", "minLength": 1, "maxLength": 63, "description": "Only this schema (default: every non-system schema)."],
            "table": ["type": "string", "minLength": 1, "maxLength": 63, "description": "Only this table or view."],
            "timeout_ms": ["type": "integer", "minimum": 1, "maximum": 3_600_000],
        ],
    ]

    static let schemaOutput: JSONValue = [
        "type": "object", "required": ["tables", "truncated"],
        "properties": [
            "tables": ["type": "array", "items": [
                "type": "object", "required": ["schema", "name", "kind", "columns"],
                "properties": [
                    "schema": ["type": "string"], "name": ["type": "string"],
                    "kind": ["enum": ["table", "view", "materialized_view", "partitioned_table", "foreign_table"]],
                    "comment": ["type": ["string", "null"]],
                    "columns": ["type": "array", "items": [
                        "type": "object", "required": ["name", "type", "nullable", "primary_key"],
                        "properties": [
                            "name": ["type": "string"], "type": ["type": "string"], "nullable": ["type": "boolean"],
                            "default": ["type": ["string", "null"]], "primary_key": ["type": "boolean"], "comment": ["type": ["string", "null"]],
                        ],
                    ]],
                ],
            ]],
            "truncated": ["type": "boolean"],
        ],
    ]

    let state: PGState

    /// Reads the configuration; fails (without echoing the DSN) when there is no usable DSN.
    public init(configuration: JSONValue) throws {
        state = try PGState(configuration, environment: ProcessInfo.processInfo.environment)
    }

    /// All tools do I/O: answered asynchronously.
    public func callNow(_ call: ToolCall) throws -> ToolOutput? {
        guard ["query", "execute", "schema"].contains(call.tool) else { throw DriverError.unknownTool(call.tool) }
        return nil
    }

    /// Runs one tool.
    public func call(_ call: ToolCall) async throws -> ToolOutput {
        switch call.tool {
        case "query": return .json(try await state.query(call))
        case "execute": return .json(try await state.execute(call))
        case "schema": return .json(try await state.schema(call))
        default: throw DriverError.unknownTool(call.tool)
        }
    }
}

/// One instance: settings and its connection pool.
final class PGState: Sendable {
    let pool: PGPool
    let maxRows: Int
    let defaultTimeoutMs: Int
    let readOnly: Bool
    static let keys: Set<String> = ["dsn", "max_connections", "max_rows", "default_timeout_ms", "connect_timeout_ms", "read_only"]

    init(_ config: JSONValue, environment: [String: String]) throws {
        let r = try ConfigReader(config, driver: "postgres", known: Self.keys)
        guard let dsn = try r.string("dsn") ?? environment["NOVA_PG_DSN"], !dsn.isEmpty else {
            throw DriverError.invalidArgument("postgres: no DSN — set \"dsn\" in the driver configuration or NOVA_PG_DSN in the environment")
        }
        let info: PostgresDSN
        do { info = try PostgresDSN(dsn: dsn) } catch { throw DriverError.invalidArgument(error.message) }
        maxRows = try r.int("max_rows", default: 1000, in: 1...100_000)
        defaultTimeoutMs = try r.int("default_timeout_ms", default: 30_000, in: 1...3_600_000)
        readOnly = try r.bool("read_only", default: false)
        let maxConnections = try r.int("max_connections", default: 4, in: 1...64)
        let connectTimeoutMs = try r.int("connect_timeout_ms", default: 5000, in: 1...600_000)
        // Session defaults: read-only unless a transaction says otherwise, the default statement
        // timeout, and no session left idle inside a transaction.
        pool = PGPool(info: info, maxConnections: maxConnections, connectTimeoutMs: connectTimeoutMs, startup: [
            ("default_transaction_read_only", "on"),
            ("statement_timeout", String(Self.statementTimeout(forRemainingMs: defaultTimeoutMs))),
            ("idle_in_transaction_session_timeout", "60000"),
        ])
    }

    deinit { pool.shutdown() }

    /// The statement_timeout for a deadline `ms` away: 90 % of it, minus 20 ms, at least 1 ms.
    static func statementTimeout(forRemainingMs ms: Int) -> Int { max(1, ms * 9 / 10 - 20) }

    struct SQLInput {
        var sql: String
        var params: [JSONValue]
        var maxRows: Int
        var arrays: Bool
        var deadline: CallDeadline
    }

    func sqlInput(_ call: ToolCall, _ input: JSONValue) throws -> SQLInput {
        let sql = try Input.requiredString(input, "sql")
        guard !sql.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw DriverError.invalidArgument("sql is empty") }
        var params: [JSONValue] = []
        if let p = input["params"], !p.isNull {
            guard let a = p.arrayValue else { throw DriverError.invalidArgument("params must be an array") }
            guard a.count <= 65535 else { throw DriverError.invalidArgument("params: at most 65535 values") }
            params = a
        }
        return SQLInput(sql: sql, params: params,
                        maxRows: min(try Input.int(input, "max_rows", in: 1...100_000) ?? maxRows, maxRows),
                        arrays: input["row_format"]?.stringValue == "array",
                        deadline: CallDeadline(call: call, inputTimeoutMs: try Input.int(input, "timeout_ms", in: 1...3_600_000),
                                               defaultTimeoutMs: defaultTimeoutMs))
    }

    /// Runs `body` inside a transaction on a pooled connection. The transaction ends with
    /// COMMIT (`commit`) or ROLLBACK; a connection whose state is uncertain is not reused.
    /// Past the deadline the connection is closed, which ends a statement the server still runs.
    func transaction<T: Sendable>(_ deadline: CallDeadline, readWrite: Bool, commit: Bool, what: String,
                                  _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let conn = try await pool.acquire(deadline: deadline)
        let logger = PGPool.logger
        let work: @Sendable () async throws -> T = {
            try await conn.query(PostgresQuery(unsafeSQL: readWrite ? "BEGIN READ WRITE" : "BEGIN READ ONLY"), logger: logger)
            if deadline.source != "default" {
                // SET LOCAL, parameterized: the value is a bind value, not SQL text.
                var b = PostgresBindings()
                b.append(UntypedParameter(text: String(Self.statementTimeout(forRemainingMs: deadline.remainingMilliseconds))))
                try await conn.query(PostgresQuery(unsafeSQL: "SELECT set_config('statement_timeout', $1, true)", binds: b), logger: logger)
            }
            let result = try await body(conn)
            try await conn.query(PostgresQuery(unsafeSQL: commit ? "COMMIT" : "ROLLBACK"), logger: logger)
            return result
        }
        do {
            let result = try await Self.race(deadline, close: conn, work)
            // After a commit, whatever session state the statement changed would persist:
            // DISCARD ALL returns the connection to its startup state.
            if commit {
                do { try await conn.query("DISCARD ALL", logger: logger); pool.release(conn, reusable: true) } catch { pool.release(conn, reusable: false) }
            } else {
                pool.release(conn, reusable: true)
            }
            return result
        } catch {
            let mapped = PGErrors.statement(error, what: what, deadline: deadline)
            var reusable = false
            if !conn.isClosed, mapped.code == "sql_error" || mapped.code == "statement_timeout" {
                // The transaction is aborted; roll it back and keep the connection.
                reusable = (try? await conn.query("ROLLBACK", logger: logger)) != nil
            }
            pool.release(conn, reusable: reusable)
            throw mapped
        }
    }

    /// Runs `work`; if it has not ended one second after the deadline (the server's own
    /// statement_timeout fires before the deadline, so this is for a server that does not
    /// answer), or when the call is cancelled, closes the connection, which fails the
    /// statement, and reports the deadline (or the cancellation) at once.
    ///
    /// It never waits for `work` to notice: a statement on a connection being closed could
    /// keep it (and so the call, which must complete) waiting; the connection is not reused.
    static func race<T: Sendable>(_ deadline: CallDeadline, close conn: PostgresConnection,
                                  _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let outcome = FirstOutcome<T>()
        let worker = Task { outcome.settle(await Result(catching: work)) }
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(max(0, deadline.remainingNanos)) + 1_000_000_000)
            if !Task.isCancelled { outcome.settle(.failure(RaceStop.deadline)) }
        }
        defer { timer.cancel() }
        let result = await withTaskCancellationHandler {
            await outcome.value()
        } onCancel: {
            outcome.settle(.failure(RaceStop.cancelled))
        }
        switch result {
        case .success(let value): return value
        case .failure(let stop as RaceStop):
            worker.cancel()
            // Closed in the background (kept referenced until done): the call completes now.
            Task { try? await conn.close() }
            throw stop == .deadline ? deadline.error("the statement") : CancellationError()
        case .failure(let error): throw error
        }
    }

    enum RaceStop: Error, Equatable { case deadline, cancelled }

    struct Rows: Sendable {
        var columns: [JSONValue] = []
        var rows: [JSONValue] = []
        var truncated = false
    }

    static func columnsJSON(_ cols: [(String, UInt32)]) -> [JSONValue] {
        cols.map { ["name": .string($0.0), "type": .string(PGDecode.typeName($0.1)), "type_oid": .int(Int($0.1))] }
    }

    /// Unique keys for the row objects: a repeated column name gets `_2`, `_3`…
    static func keys(_ names: [String]) -> [String] {
        var seen: [String: Int] = [:]
        var used = Set<String>()
        return names.map { name in
            var key = name
            if used.contains(key) {
                var n = seen[name, default: 1]
                repeat { n += 1; key = "\(name)_\(n)" } while used.contains(key)
                seen[name] = n
            }
            used.insert(key)
            return key
        }
    }

    static func rowJSON(_ row: PostgresRow, keys: [String], arrays: Bool) -> JSONValue {
        if arrays { return .array(row.map { PGDecode.value($0) }) }
        var obj: [String: JSONValue] = [:]
        for (i, cell) in row.enumerated() where i < keys.count { obj[keys[i]] = PGDecode.value(cell) }
        return .object(obj)
    }

    /// `postgres.query`.
    func query(_ call: ToolCall) async throws -> JSONValue {
        let started = monotonicNanos()
        let input = try call.input()
        let q = try sqlInput(call, input)
        let write = try Input.bool(input, "allow_write") ?? false
        if write && readOnly { throw DriverError.tool("read_only_instance", "this postgres instance is configured read_only: allow_write is refused") }
        let query = PostgresQuery(unsafeSQL: q.sql, binds: UntypedParameter.bindings(q.params))
        let rows = try await transaction(q.deadline, readWrite: write, commit: write, what: "postgres.query") { conn in
            let sequence = try await conn.query(query, logger: PGPool.logger)
            var out = Rows()
            let cols = sequence.columns.map { ($0.name, $0.dataType.rawValue) }
            out.columns = Self.columnsJSON(cols)
            let keys = Self.keys(cols.map(\.0))
            for try await row in sequence {
                if out.rows.count == q.maxRows { out.truncated = true; break }
                out.rows.append(Self.rowJSON(row, keys: keys, arrays: q.arrays))
            }
            return out
        }
        call.log(.debug, "postgres.query: \(rows.rows.count) rows\(rows.truncated ? " (truncated)" : "") in \(elapsedMilliseconds(since: started)) ms, \(write ? "read-write" : "read-only")")
        return [
            "columns": .array(rows.columns), "rows": .array(rows.rows), "row_count": .int(rows.rows.count),
            "truncated": .bool(rows.truncated), "read_only": .bool(!write), "elapsed_ms": .double(elapsedMilliseconds(since: started)),
        ]
    }

    /// `postgres.execute`.
    func execute(_ call: ToolCall) async throws -> JSONValue {
        let started = monotonicNanos()
        if readOnly { throw DriverError.tool("read_only_instance", "this postgres instance is configured read_only: postgres.execute is refused") }
        let q = try sqlInput(call, try call.input())
        let query = PostgresQuery(unsafeSQL: q.sql, binds: UntypedParameter.bindings(q.params))
        let (rows, metadata) = try await transaction(q.deadline, readWrite: true, commit: true, what: "postgres.execute") { conn in
            let collected = Mutex<(rows: Rows, keys: [String]?)>((Rows(), nil))
            let maxRows = q.maxRows, arrays = q.arrays
            let metadata = try await conn.query(query, logger: PGPool.logger) { row in
                collected.withLock { c in
                    if c.keys == nil {
                        let cols = row.map { ($0.columnName, $0.dataType.rawValue) }
                        c.rows.columns = Self.columnsJSON(cols)
                        c.keys = Self.keys(cols.map(\.0))
                    }
                    if c.rows.rows.count == maxRows { c.rows.truncated = true; return }
                    c.rows.rows.append(Self.rowJSON(row, keys: c.keys ?? [], arrays: arrays))
                }
            }.get()
            return (collected.withLock { $0.rows }, metadata)
        }
        call.log(.info, "postgres.execute: \(metadata.command) \(metadata.rows.map(String.init) ?? "-") in \(elapsedMilliseconds(since: started)) ms")
        return [
            "command": .string(metadata.command), "rows_affected": metadata.rows.map { .int($0) } ?? .null,
            "columns": .array(rows.columns), "rows": .array(rows.rows), "row_count": .int(rows.rows.count),
            "truncated": .bool(rows.truncated), "elapsed_ms": .double(elapsedMilliseconds(since: started)),
        ]
    }

    static let schemaSQL = """
        SELECT n.nspname, c.relname, c.relkind::text, obj_description(c.oid, 'pg_class'),
               a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid),
               EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY (i.indkey)),
               col_description(c.oid, a.attnum)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
          AND ($1::text IS NULL OR n.nspname = $1::text)
          AND ($2::text IS NULL OR c.relname = $2::text)
        ORDER BY n.nspname, c.relname, a.attnum
        """

    static let kinds = ["r": "table", "v": "view", "m": "materialized_view", "p": "partitioned_table", "f": "foreign_table"]
    static let maxTables = 1000

    /// `postgres.schema`.
    func schema(_ call: ToolCall) async throws -> JSONValue {
        let input = try call.input()
        let deadline = CallDeadline(call: call, inputTimeoutMs: try Input.int(input, "timeout_ms", in: 1...3_600_000), defaultTimeoutMs: defaultTimeoutMs)
        var binds = PostgresBindings()
        for key in ["schema", "table"] {
            if let s = input[key]?.stringValue { binds.append(UntypedParameter(text: s)) } else { binds.appendNull() }
        }
        let query = PostgresQuery(unsafeSQL: Self.schemaSQL, binds: binds)
        let result = try await transaction(deadline, readWrite: false, commit: false, what: "postgres.schema") { conn in
            var tables: [JSONValue] = []
            var current: (key: String, obj: [String: JSONValue], cols: [JSONValue])?
            var truncated = false
            func flush() {
                if let c = current {
                    var o = c.obj
                    o["columns"] = .array(c.cols)
                    tables.append(.object(o))
                }
                current = nil
            }
            for try await row in try await conn.query(query, logger: PGPool.logger) {
                let v = row.map { PGDecode.value($0) }
                let schema = v[0].stringValue ?? "", name = v[1].stringValue ?? ""
                let key = schema + "\u{0}" + name
                if current?.key != key {
                    flush()
                    if tables.count >= Self.maxTables { truncated = true; break }
                    current = (key, ["schema": .string(schema), "name": .string(name),
                                     "kind": .string(Self.kinds[v[2].stringValue ?? ""] ?? "table"), "comment": v[3]], [])
                }
                current?.cols.append(["name": v[4], "type": v[5], "nullable": v[6], "default": v[7], "primary_key": v[8], "comment": v[9]])
            }
            if !truncated { flush() }
            return ["tables": .array(tables), "truncated": .bool(truncated)] as JSONValue
        }
        return result
    }
}

/// The driver's ABI entry point (`nova_driver_init`, see nova_driver.h).
@_cdecl("nova_driver_init")
public func novaDriverInit(_ host: UnsafeRawPointer?, _ table: UnsafeMutableRawPointer?) -> Int32 {
    DriverExport.initialize(PostgresDriver.self, host: host, table: table)
}

/// The first of several outcomes (the statement, the deadline, a cancellation); later ones are
/// ignored. `value()` waits for it, or returns it if it came first.
final class FirstOutcome<T: Sendable>: Sendable {
    private struct State {
        var result: Result<T, any Error>?
        var waiter: CheckedContinuation<Result<T, any Error>, Never>?
    }

    private let state = Mutex(State())

    func settle(_ result: Result<T, any Error>) {
        let waiter = state.withLock { s -> CheckedContinuation<Result<T, any Error>, Never>? in
            guard s.result == nil else { return nil }
            s.result = result
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: result)
    }

    func value() async -> Result<T, any Error> {
        await withCheckedContinuation { c in
            let ready = state.withLock { s -> Result<T, any Error>? in
                if let r = s.result { return r }
                s.waiter = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}

extension Result where Failure == any Error {
    /// The outcome of an async throwing body.
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
