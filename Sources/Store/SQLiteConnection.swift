import CSQLite

/// An SQLite error: the result code, SQLite's message and what was being done.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// The (extended) SQLite result code.
    public let code: Int32
    /// `sqlite3_errmsg` text.
    public let message: String
    /// The statement or step that failed.
    public let context: String

    public var description: String { "SQLite error \(code) (\(message)) in: \(context)" }
}

/// A bound or fetched SQL value.
enum SQLValue {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
}

/// One SQLite connection with a statement cache. Not thread-safe: `SQLiteStore` serializes
/// all use behind its lock.
final class SQLiteConnection {
    let db: OpaquePointer
    let path: String
    private var cache: [String: OpaquePointer] = [:]

    init(path: String) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let msg = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let handle { sqlite3_close_v2(handle) }
            throw SQLiteError(code: rc, message: msg, context: "open \(path)")
        }
        db = handle
        self.path = path
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        for (_, stmt) in cache { sqlite3_finalize(stmt) }
        sqlite3_close_v2(db)
    }

    func error(_ rc: Int32, _ context: String) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(db)), context: context)
    }

    /// Runs one or more statements without results.
    func exec(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(err)
            throw SQLiteError(code: rc, message: msg, context: sql)
        }
    }

    private func statement(_ sql: String) throws -> OpaquePointer {
        if let s = cache[sql] { return s }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql) }
        cache[sql] = stmt
        return stmt
    }

    /// Runs `sql` with `params` and returns every row.
    @discardableResult
    func query(_ sql: String, _ params: [SQLValue] = []) throws -> [[SQLValue]] {
        let stmt = try statement(sql)
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, p) in params.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch p {
            case .null: rc = sqlite3_bind_null(stmt, idx)
            case .int(let v): rc = sqlite3_bind_int64(stmt, idx, v)
            case .double(let v): rc = sqlite3_bind_double(stmt, idx, v)
            case .text(let v): rc = sqlite3_bind_text(stmt, idx, v, -1, transient)
            }
            if rc != SQLITE_OK { throw error(rc, "bind \(idx) of \(sql)") }
        }
        var rows: [[SQLValue]] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            let n = sqlite3_column_count(stmt)
            var row: [SQLValue] = []
            row.reserveCapacity(Int(n))
            for c in 0..<n {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(stmt, c)))
                case SQLITE_FLOAT: row.append(.double(sqlite3_column_double(stmt, c)))
                case SQLITE_NULL: row.append(.null)
                default:
                    if let t = sqlite3_column_text(stmt, c) { row.append(.text(String(cString: t))) } else { row.append(.null) }
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back if it throws.
    func immediateTransaction<T>(_ body: () throws -> T) throws -> T {
        try exec("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try exec("COMMIT")
            return result
        } catch {
            if sqlite3_get_autocommit(db) == 0 { try? exec("ROLLBACK") }
            throw error
        }
    }
}

extension SQLValue {
    var text: String? { if case .text(let s) = self { return s } else { return nil } }
    var int: Int? {
        switch self {
        case .int(let v): return Int(v)
        case .double(let d): return Int(exactly: d)
        default: return nil
        }
    }
    var double: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .double(let d): return d
        default: return nil
        }
    }
}
