import DriverKit
import DriverSupport
import Foundation
import JSON
import Logging
import NIOPosix
import PostgresNIO
import PostgresSupport
import Synchronization

/// A small connection pool, one per driver instance: at most `maxConnections` open
/// connections, idle ones reused (LIFO), waiters served in order and bounded by their call's
/// deadline. A connection failure is reported to the caller at once (no silent retry loop),
/// with the server's SQLSTATE when the server refused (e.g. 28P01, bad password).
final class PGPool: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<PostgresConnection?, any Error>
    }

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [Waiter] = []
        var closed = false
    }

    private let state = Mutex(State())
    private let ids = Atomic<UInt64>(0)
    private let connectionIDs = Atomic<Int>(0)
    let maxConnections: Int
    let info: PostgresDSN
    let connectTimeoutMs: Int
    let startup: [(String, String)]
    static let logger = Logger(label: "nova.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    init(info: PostgresDSN, maxConnections: Int, connectTimeoutMs: Int, startup: [(String, String)]) {
        self.info = info
        self.maxConnections = maxConnections
        self.connectTimeoutMs = connectTimeoutMs
        self.startup = startup
    }

    deinit { shutdown() }

    /// Closes idle connections and fails waiters; connections in use close when released.
    func shutdown() {
        let (idle, waiters) = state.withLock { s in
            s.closed = true
            defer { s.idle = []; s.waiters = [] }
            return (s.idle, s.waiters)
        }
        // Each connection stays referenced until its close completes (PostgresConnection must
        // be closed before it is released).
        for c in idle { c.close().whenComplete { _ in _ = c } }
        for w in waiters { w.continuation.resume(throwing: DriverError(.cancelled, code: "shutdown", message: "the postgres driver instance is shutting down")) }
    }

    /// A connection for one call; give it back with `release`.
    func acquire(deadline: CallDeadline) async throws -> PostgresConnection {
        let id = ids.add(1, ordering: .relaxed).newValue
        let slot: PostgresConnection? = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresConnection?, any Error>) in
                let immediate: Result<PostgresConnection?, any Error>? = state.withLock { s in
                    if s.closed { return .failure(DriverError(.cancelled, code: "shutdown", message: "the postgres driver instance is shutting down")) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    while let c = s.idle.popLast() {
                        if !c.isClosed { return .success(c) }
                        s.open -= 1
                    }
                    if s.open < maxConnections {
                        s.open += 1
                        return .success(nil)  // the caller opens a new connection in this slot
                    }
                    s.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let immediate {
                    continuation.resume(with: immediate)
                } else {
                    // Wake the waiter with a deadline error if nothing frees up in time.
                    Task { [weak self] in
                        try? await Task.sleep(nanoseconds: UInt64(max(0, deadline.remainingNanos)))
                        self?.expire(id, deadline.error("waiting for a free PostgreSQL connection (all \(self?.maxConnections ?? 0) in use)"))
                    }
                }
            }
        } onCancel: {
            expire(id, CancellationError())
        }
        if let slot { return slot }
        do {
            return try await connect(deadline: deadline)
        } catch {
            releaseSlot()
            throw error
        }
    }

    private func expire(_ id: UInt64, _ error: any Error) {
        let waiter = state.withLock { s -> Waiter? in
            guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return s.waiters.remove(at: i)
        }
        waiter?.continuation.resume(throwing: error)
    }

    /// Gives a connection back. Not reusable (broken, or state unknown): it is closed.
    func release(_ connection: PostgresConnection, reusable: Bool) {
        enum Action { case kept, handOff(Waiter), close(Waiter?) }
        let action = state.withLock { s -> Action in
            if reusable && !connection.isClosed && !s.closed {
                if !s.waiters.isEmpty { return .handOff(s.waiters.removeFirst()) }
                s.idle.append(connection)
                return .kept
            }
            s.open -= 1
            if !s.waiters.isEmpty && !s.closed {
                s.open += 1  // the woken waiter opens a new connection in this slot
                return .close(s.waiters.removeFirst())
            }
            return .close(nil)
        }
        switch action {
        case .kept: break
        case .handOff(let waiter): waiter.continuation.resume(returning: connection)
        case .close(let waiter):
            connection.close().whenComplete { _ in _ = connection }
            waiter?.continuation.resume(returning: nil)
        }
    }

    /// A slot reserved for a new connection was not used (the connect failed).
    private func releaseSlot() {
        let waiter = state.withLock { s -> Waiter? in
            if !s.waiters.isEmpty && !s.closed { return s.waiters.removeFirst() }
            s.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: nil)
    }

    private func connect(deadline: CallDeadline) async throws -> PostgresConnection {
        let timeout = min(connectTimeoutMs, deadline.remainingMilliseconds)
        guard timeout > 0 else { throw deadline.error("connecting to PostgreSQL") }
        let config = try info.configuration(connectTimeoutMs: timeout, startup: startup)
        let id = connectionIDs.add(1, ordering: .relaxed).newValue
        do {
            return try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: config, id: id, logger: Self.logger)
        } catch {
            if deadline.hasPassed { throw deadline.error("connecting to PostgreSQL at \(info.endpoint)") }
            throw PGErrors.connectionFailure(error, endpoint: info.endpoint, password: info.password)
        }
    }
}

/// Maps PostgresNIO errors to driver errors: SQL errors keep their SQLSTATE and the server's
/// fields; nothing from the DSN (user, password) is repeated.
enum PGErrors {
    static func serverFields(_ e: PSQLError) -> [String: JSONValue] {
        guard let info = e.serverInfo else { return [:] }
        var out: [String: JSONValue] = [:]
        let fields: [(String, PSQLError.ServerInfo.Field)] = [
            ("sqlstate", .sqlState), ("severity", .severity), ("detail", .detail), ("hint", .hint), ("position", .position),
            ("schema", .schemaName), ("table", .tableName), ("column", .columnName), ("constraint", .constraintName),
            ("data_type", .dataTypeName), ("where", .locationContext),
        ]
        for (key, field) in fields {
            guard let v = info[field] else { continue }
            out[key] = key == "position" ? (Int(v).map { .int($0) } ?? .string(v)) : .string(v)
        }
        return out
    }

    /// An error raised while a statement ran.
    static func statement(_ error: any Error, what: String, deadline: CallDeadline) -> DriverError {
        if let e = error as? DriverError { return e }
        if let e = error as? PSQLError {
            if e.code == .server, let info = e.serverInfo {
                let state = info[.sqlState] ?? ""
                let message = info[.message] ?? "server error"
                if state == "57014" {
                    return DriverError(.deadline, code: "statement_timeout", message: "\(what): \(message) (statement_timeout from the call's deadline)",
                                       details: serverFields(e))
                }
                return DriverError(.tool, code: "sql_error", message: "\(what): \(message) (SQLSTATE \(state))", details: serverFields(e))
            }
            if e.code == .tooManyParameters { return DriverError.invalidArgument("too many parameters (at most 65535)") }
            if deadline.hasPassed { return deadline.error(what) }
            return DriverError.tool("connection_failed", "\(what): the connection failed (\(e.code))")
        }
        if error is CancellationError {
            return deadline.hasPassed ? deadline.error(what) : DriverError(.cancelled, code: "cancelled", message: "\(what): cancelled")
        }
        if deadline.hasPassed { return deadline.error(what) }
        return DriverError.tool("connection_failed", "\(what): \(error)")
    }

    static func connectionFailure(_ error: any Error, endpoint: String, password: String?) -> DriverError {
        if let e = error as? PSQLError, e.code == .server, let info = e.serverInfo {
            return DriverError.tool("connection_failed", "cannot connect to PostgreSQL at \(endpoint): \(info[.message] ?? "refused") (SQLSTATE \(info[.sqlState] ?? "?"))",
                                    details: serverFields(e).merging(["endpoint": .string(endpoint)]) { a, _ in a })
        }
        let reason = PostgresFailure.connectReason(error, password: password).reason
        return DriverError.tool("connection_failed", "cannot connect to PostgreSQL at \(endpoint): \(reason)", details: ["endpoint": .string(endpoint)])
    }
}
