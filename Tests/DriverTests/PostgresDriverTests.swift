import Foundation
import Host
import JSON
import Testing

/// The postgres driver against a real PostgreSQL 15 cluster (Tests/servers/start-postgres.sh).
@Suite("postgres driver")
struct PostgresDriverTests {
    func host(_ pgConfig: [String: JSONValue] = [:], gate: any CallGate = AllowAllGate()) async throws -> HostHarness {
        var config = try DriverFixtures.serverConfig()
        var pg: [String: JSONValue] = ["dsn": .string(try Servers.postgresDSN())]
        for (k, v) in pgConfig { pg[k] = v }
        config["postgres"] = .object(pg)
        return try await HostHarness(config: config, gate: gate)
    }

    /// Creates a fresh table through postgres.execute; returns its name.
    func makeTable(_ h: HostHarness, _ columns: String = "id int PRIMARY KEY, note text") async throws -> String {
        let name = uniqueName("t")
        let r = try await h.call("postgres.execute", ["sql": .string("CREATE TABLE \(name) (\(columns))")])
        _ = try r.value()
        return name
    }

    @Test func typedResults() async throws {
        let sql = """
            SELECT 1::int2 AS a, 2::int4 AS b, 9007199254740993::int8 AS c, 1.5::float8 AS d, 12.50::numeric(10,2) AS e,
                   true AS f, 'héllo'::text AS g, '{"k": [1, 2]}'::jsonb AS h, '{"k": 1}'::json AS i,
                   '00000000-0000-0000-0000-000000000001'::uuid AS j, '2024-02-29'::date AS k,
                   '2024-02-29 12:34:56.789'::timestamp AS l, '2024-02-29 12:34:56.789+02'::timestamptz AS m,
                   ARRAY[1, 2, NULL]::int4[] AS n, ARRAY['a', 'b"c'] AS o, '\\xdeadbeef'::bytea AS p, NULL::text AS q,
                   'NaN'::float8 AS r, '1 day 02:03:04.5'::interval AS s, '192.168.0.1/24'::inet AS t,
                   ARRAY[[1, 2], [3, 4]] AS u, -0.000123::numeric AS v, 123456789012345678901234567890::numeric AS w,
                   '13:45:00'::time AS x, 'abc'::varchar(5) AS y, 'ab'::char(3) AS z, ARRAY[]::text[] AS empty
            """
        let out = try await host().call("postgres.query", ["sql": .string(sql)]).value()
        let row = try #require(out["rows"]?[0])
        #expect(row["a"] == 1 && row["b"] == 2 && row["c"] == .int(9007199254740993))
        #expect(row["d"] == 1.5)
        #expect(row["e"] == "12.50")
        #expect(row["f"] == true)
        #expect(row["g"] == "héllo")
        #expect(row["h"] == ["k": [1, 2]])
        #expect(row["i"] == ["k": 1])
        #expect(row["j"] == "00000000-0000-0000-0000-000000000001")
        #expect(row["k"] == "2024-02-29")
        #expect(row["l"] == "2024-02-29T12:34:56.789")
        #expect(row["m"] == "2024-02-29T10:34:56.789Z")
        #expect(row["n"] == [1, 2, nil])
        #expect(row["o"] == ["a", "b\"c"])
        #expect(row["p"] == "3q2+7w==")
        #expect(row["q"] == .null)
        #expect(row["r"] == "NaN")
        #expect(row["s"] == "P1DT2H3M4.5S")
        #expect(row["t"] == "192.168.0.1/24")
        #expect(row["u"] == [[1, 2], [3, 4]])
        #expect(row["v"] == "-0.000123")
        #expect(row["w"] == "123456789012345678901234567890")
        #expect(row["x"] == "13:45:00")
        #expect(row["y"] == "abc" && row["z"] == "ab ")
        #expect(row["empty"] == [])
        let columns = try #require(out["columns"]?.arrayValue)
        #expect(columns.count == 27)
        #expect(columns[0] == ["name": "a", "type": "int2", "type_oid": 21])
        #expect(columns[7]["type"] == "jsonb" && columns[12]["type"] == "timestamptz" && columns[13]["type"] == "int4[]")
        #expect(out["read_only"] == true && out["truncated"] == false && out["row_count"] == 1)
    }

    @Test func parametersAreBoundNeverSpliced() async throws {
        let h = try await host()
        let evil = "'; DROP TABLE inventory; --"
        let out = try await h.call("postgres.query", [
            "sql": "SELECT $1::int + 1 AS n, $2 AS s, $3::bool AS b, $4::jsonb AS j, $5::text[] AS arr, $6::int IS NULL AS isnull, $7 AS evil, $8::float8 * 2 AS f",
            "params": [41, "hé \"quoted\"", true, ["a": 1], ["x", "y,z", "q\"uote"], nil, .string(evil), 1.25],
        ]).value()
        let row = try #require(out["rows"]?[0])
        #expect(row["n"] == 42 && row["s"] == "hé \"quoted\"" && row["b"] == true && row["j"] == ["a": 1])
        #expect(row["arr"] == ["x", "y,z", "q\"uote"])
        #expect(row["isnull"] == true)
        #expect(row["evil"] == .string(evil))
        #expect(row["f"] == 2.5)
        // Server-side inference without casts: the column's type decides.
        let inv = try await h.call("postgres.query", ["sql": "SELECT sku, quantity FROM inventory WHERE sku = ANY($1) AND quantity < $2 ORDER BY sku",
                                                      "params": [["A-100", "B-200", "C-300"], 10]]).value()
        #expect(inv["rows"] == [["sku": "B-200", "quantity": 3], ["sku": "C-300", "quantity": 0]])
        let still = try await h.call("postgres.query", ["sql": "SELECT count(*) AS n FROM inventory"]).value()
        #expect(still["rows"]?[0]?["n"] == 4)
    }

    @Test func writesThroughQueryAreRejectedByTheServer() async throws {
        let h = try await host()
        let table = try await makeTable(h)
        let r = try await h.call("postgres.query", ["sql": .string("INSERT INTO \(table) VALUES (1, 'x')")])
        #expect(r.step.status == .failed)
        #expect(r.error?.code == "sql_error")
        #expect(r.error?.message.contains("SQLSTATE 25006") == true)
        #expect(r.error?.message.contains("read-only transaction") == true)
        // A statement that tries to switch the session to read-write changes nothing either.
        _ = try await h.call("postgres.query", ["sql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"]).value()
        let again = try await h.call("postgres.query", ["sql": .string("UPDATE \(table) SET note = 'y'")])
        #expect(again.error?.message.contains("SQLSTATE 25006") == true)
        let ddl = try await h.call("postgres.query", ["sql": .string("DROP TABLE \(table)")])
        #expect(ddl.error?.message.contains("SQLSTATE 25006") == true)
        let count = try await h.call("postgres.query", ["sql": .string("SELECT count(*) AS n FROM \(table)")]).value()
        #expect(count["rows"]?[0]?["n"] == 0)
        // allow_write: true runs READ WRITE and commits.
        let w = try await h.call("postgres.query", ["sql": .string("INSERT INTO \(table) VALUES ($1, $2) RETURNING id"), "params": [7, "seven"], "allow_write": true]).value()
        #expect(w["read_only"] == false && w["rows"] == [["id": 7]])
        let after = try await h.call("postgres.query", ["sql": .string("SELECT id, note FROM \(table)")]).value()
        #expect(after["rows"] == [["id": 7, "note": "seven"]])
    }

    @Test func executeReportsRowsAffected() async throws {
        let h = try await host()
        let table = try await makeTable(h)
        let ins = try await h.call("postgres.execute", ["sql": .string("INSERT INTO \(table) SELECT g, 'n' || g FROM generate_series(1, 5) g RETURNING id"), "max_rows": 3]).value()
        #expect(ins["command"] == "INSERT" && ins["rows_affected"] == 5)
        #expect(ins["rows"] == [["id": 1], ["id": 2], ["id": 3]] && ins["truncated"] == true)
        let upd = try await h.call("postgres.execute", ["sql": .string("UPDATE \(table) SET note = $1 WHERE id > $2"), "params": ["big", 3]]).value()
        #expect(upd["command"] == "UPDATE" && upd["rows_affected"] == 2 && upd["rows"] == [])
        let del = try await h.call("postgres.execute", ["sql": .string("DELETE FROM \(table) WHERE note = 'big'")]).value()
        #expect(del["rows_affected"] == 2)
        let dup = try await h.call("postgres.execute", ["sql": .string("INSERT INTO \(table) VALUES (1, 'again')")])
        #expect(dup.error?.code == "sql_error" && dup.error?.message.contains("SQLSTATE 23505") == true)
    }

    @Test func sqlErrorsCarrySQLSTATE() async throws {
        let h = try await host()
        let cases: [(String, String)] = [
            ("SELEC 1", "42601"), ("SELECT * FROM no_such_table_xyz", "42P01"), ("SELECT 1 / 0", "22012"),
            ("SELECT 'abc'::int", "22P02"), ("SELECT 1; SELECT 2", "42601"),
        ]
        for (sql, state) in cases {
            let r = try await h.call("postgres.query", ["sql": .string(sql)])
            #expect(r.error?.code == "sql_error", "\(sql)")
            #expect(r.error?.message.contains("SQLSTATE \(state)") == true, "\(sql): \(r.error?.message ?? "")")
        }
        // The connection survives errors: the next query works on the same single connection.
        let one = try await host(["max_connections": 1])
        _ = try await one.call("postgres.query", ["sql": "SELECT 1 / 0"])
        let ok = try await one.call("postgres.query", ["sql": "SELECT 2 AS two"]).value()
        #expect(ok["rows"] == [["two": 2]])
    }

    @Test func statementTimeoutComesFromTheDeadline() async throws {
        let h = try await host(["max_connections": 1])
        // Open the connection first (SCRAM authentication is slow in a debug build), so that
        // the deadline below is spent on the statement.
        _ = try await h.call("postgres.query", ["sql": "SELECT 1"]).value()
        // pg_sleep(10) would succeed: a deadline error proves the statement was cut short.
        let byInput = try await h.call("postgres.query", ["sql": "SELECT pg_sleep(10)", "timeout_ms": 500])
        #expect(byInput.error?.kind == .deadline)
        #expect(byInput.error?.code == "statement_timeout")
        #expect(byInput.error?.message.contains("statement timeout") == true)
        let byStep = try await h.call("postgres.query", ["sql": "SELECT pg_sleep(10)"], timeoutMs: 500)
        #expect(byStep.error?.kind == .deadline)
        let fine = try await h.call("postgres.query", ["sql": "SELECT true AS slept FROM pg_sleep(0.05)", "timeout_ms": 5000]).value()
        #expect(fine["rows"] == [["slept": true]])
    }

    @Test func cancellationFreesTheConnection() async throws {
        let h = try await host(["max_connections": 1])
        _ = try await h.call("postgres.query", ["sql": "SELECT 1"]).value()
        let running = Task { try await h.call("postgres.query", ["sql": "SELECT pg_sleep(20) AS cancel_me"]) }
        // Cancel once the server runs the statement (seen from a connection of our own).
        let dsn = try Servers.postgresDSN()
        try await Wait.until("the statement runs on the server") {
            let r = try await ProcessRunner.run("/usr/bin/env", ["psql", dsn, "-Atc",
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(20) AS cancel_me%'"])
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1"
        }
        running.cancel()
        let r = try await running.value
        #expect(r.step.status == .cancelled)
        // The only connection slot is free again: the driver stopped waiting for the statement
        // and closed that connection; had it held the slot for the 20 s sleep, this call (with a
        // 10 s deadline) would fail waiting for a connection.
        let next = try await h.call("postgres.query", ["sql": "SELECT 7 AS n"], timeoutMs: 10_000).value()
        #expect(next["rows"] == [["n": 7]])
    }

    @Test func rowCapAndRowFormats() async throws {
        let h = try await host()
        let capped = try await h.call("postgres.query", ["sql": "SELECT g FROM generate_series(1, 50) g", "max_rows": 10]).value()
        #expect(capped["row_count"] == 10 && capped["truncated"] == true)
        let all = try await h.call("postgres.query", ["sql": "SELECT g FROM generate_series(1, 50) g", "max_rows": 100]).value()
        #expect(all["row_count"] == 50 && all["truncated"] == false)
        let arrays = try await h.call("postgres.query", ["sql": "SELECT 1 AS x, 2 AS x, 'z' AS y", "row_format": "array"]).value()
        #expect(arrays["rows"] == [[1, 2, "z"]])
        let objects = try await h.call("postgres.query", ["sql": "SELECT 1 AS x, 2 AS x, 'z' AS y"]).value()
        #expect(objects["rows"] == [["x": 1, "x_2": 2, "y": "z"]])
        let instanceCap = try await host(["max_rows": 5])
        let c = try await instanceCap.call("postgres.query", ["sql": "SELECT g FROM generate_series(1, 50) g", "max_rows": 100]).value()
        #expect(c["row_count"] == 5 && c["truncated"] == true)
        let empty = try await h.call("postgres.query", ["sql": "SELECT sku FROM inventory WHERE false"]).value()
        #expect(empty["rows"] == [] && empty["columns"] == [["name": "sku", "type": "text", "type_oid": 25]])
    }

    @Test func sessionStateDoesNotLeakBetweenCalls() async throws {
        let h = try await host(["max_connections": 1])
        _ = try await h.call("postgres.query", ["sql": "SET statement_timeout = 1"]).value()
        _ = try await h.call("postgres.query", ["sql": "SET search_path = nowhere"]).value()
        let out = try await h.call("postgres.query", ["sql": "SELECT current_setting('statement_timeout') AS t, current_setting('search_path') AS p, true AS ok FROM pg_sleep(0.01)"]).value()
        #expect(out["rows"]?[0]?["ok"] == true)
        #expect(out["rows"]?[0]?["t"] != "1ms")
        #expect(out["rows"]?[0]?["p"]?.stringValue?.contains("nowhere") == false)
        // Even after a committed write that changed the session, the next call starts clean.
        _ = try await h.call("postgres.execute", ["sql": "SET statement_timeout = 2"]).value()
        let after = try await h.call("postgres.query", ["sql": "SELECT current_setting('statement_timeout') AS t"]).value()
        #expect(after["rows"]?[0]?["t"] != "2ms")
    }

    @Test func schemaListsTablesAndColumns() async throws {
        let out = try await host().call("postgres.schema", ["table": "inventory"]).value()
        let tables = try #require(out["tables"]?.arrayValue)
        #expect(tables.count == 1)
        let t = tables[0]
        #expect(t["schema"] == "public" && t["name"] == "inventory" && t["kind"] == "table")
        #expect(t["comment"] == "Stock per SKU (example data)")
        let cols = try #require(t["columns"]?.arrayValue)
        #expect(cols.map { $0["name"] } == ["sku", "warehouse", "quantity", "unit_cost", "updated_at"])
        #expect(cols[0]["primary_key"] == true && cols[0]["nullable"] == false && cols[0]["type"] == "text")
        #expect(cols[3]["type"] == "numeric(10,2)")
        #expect(cols[4]["default"]?.stringValue?.contains("2026-01-15") == true)
        let all = try await host().call("postgres.schema", [:]).value()
        #expect((all["tables"]?.arrayValue?.count ?? 0) >= 1)
    }

    @Test func connectionFailuresNeverShowTheDSN() async throws {
        LogCapture.install()
        let password = try Servers.postgresPassword()
        let port = try Servers.closedPort()
        let refused = try await host(["dsn": .string("postgres://nova:\(password)@127.0.0.1:\(port)/nova?sslmode=disable")])
        let r = try await refused.call("postgres.query", ["sql": "SELECT 1"], timeoutMs: 5000)
        #expect(r.error?.code == "connection_failed")
        #expect(r.error?.message.contains("127.0.0.1:\(port)") == true)
        #expect(r.error?.message.contains(password) == false)
        // A wrong password: the server's SQLSTATE, never the password.
        let dsn = try Servers.postgresDSN()
        let wrong = "wrong-\(UUID().uuidString)"
        let bad = try await host(["dsn": .string(dsn.replacingOccurrences(of: password, with: wrong))])
        let b = try await bad.call("postgres.query", ["sql": "SELECT 1"], timeoutMs: 5000)
        #expect(b.error?.code == "connection_failed")
        #expect(b.error?.message.contains("SQLSTATE 28P01") == true)
        #expect(b.error?.message.contains(wrong) == false)
        // Nothing anywhere carries the real DSN: logs, recorded inputs and outputs.
        let ok = try await host().call("postgres.query", ["sql": "SELECT 1 AS one"])
        #expect(ok.succeeded)
        let logs = LogCapture.all().map(\.message).joined(separator: "\n")
        #expect(!logs.contains(password) && !logs.contains(wrong))
        #expect(!ok.step.json.text.contains(password))
        // No DSN at all: the driver does not start, and says why.
        let none = try await HostHarness(config: ["postgres": [:]]).call("postgres.query", ["sql": "SELECT 1"])
        #expect(none.step.status == .failed)
        #expect(none.step.reason?.contains("no DSN") == true)
    }

    @Test func poolServesConcurrentCalls() async throws {
        let h = try await host(["max_connections": 2])
        let results = try await withThrowingTaskGroup(of: JSONValue?.self) { group in
            for i in 0..<16 {
                group.addTask { try await h.call("postgres.query", ["sql": "SELECT $1::int AS i, true AS ok FROM pg_sleep(0.02)", "params": [.int(i)]]).output }
            }
            var all: [JSONValue?] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 16)
        #expect(results.allSatisfy { $0?["rows"]?[0]?["ok"] == true })
        #expect(Set(results.compactMap { $0?["rows"]?[0]?["i"]?.intValue }) == Set(0..<16))
    }

    @Test func policyDecidesWhoMayWrite() async throws {
        let policy = PolicyEngine(profile: try PolicyProfile.load(DriverFixtures.root + "/configs/policy.default.json"))
        let admin = try await host()
        let table = try await makeTable(admin)
        let h = try await host(gate: policy)
        let read = try await h.call("postgres.query", ["sql": .string("SELECT count(*) AS n FROM \(table)")], principal: "local")
        #expect(read.succeeded)
        let write = try await h.call("postgres.query", ["sql": .string("INSERT INTO \(table) VALUES (1, 'x')"), "allow_write": true], principal: "local")
        #expect(write.step.status == .denied)
        let exec = try await h.call("postgres.execute", ["sql": .string("DELETE FROM \(table)")], principal: "local")
        #expect(exec.step.status == .denied)
        #expect(exec.step.reason?.contains("no-destructive-sql") == true)
        let asAdmin = try await h.call("postgres.query", ["sql": .string("INSERT INTO \(table) VALUES (1, 'x')"), "allow_write": true], principal: "admin")
        #expect(asAdmin.succeeded)
        // A read-only instance refuses writes whatever the policy says.
        let ro = try await host(["read_only": true])
        let refused = try await ro.call("postgres.execute", ["sql": .string("DELETE FROM \(table)")])
        #expect(refused.error?.code == "read_only_instance")
    }
}
