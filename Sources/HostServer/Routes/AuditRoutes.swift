import Host
import Hummingbird
import JSON
import Reports

extension NovaServer {
    /// `GET /v1/audit` (admin roles): the control-plane audit log, oldest first, filtered by
    /// actor, action (or `prefix.`), window and position; JSON, or JSON lines with
    /// `Accept: application/x-ndjson` (an export an auditor verifies offline).
    /// `GET /v1/audit/verify` (admin roles): the chain checked, with the first broken entry.
    func addAuditRoutes(_ router: Router<ServerContext>) {
        on(router, .get, "/v1/audit") { [self] request, context in
            let store = try requireAudit(context)
            let q = request.uri.queryParameters
            var filter = AuditFilter(actor: q.get("actor"), action: q.get("action"))
            if let since = q.get("since") {
                guard let ms = ReportWindow.milliseconds(since) else { throw APIError.badRequest("invalid_parameter", ReportWindow.help) }
                filter.sinceMs = Timestamps.wallNanos() / 1_000_000 - ms
            }
            filter.afterSeq = Int64(try RouteHelpers.intParameter(q.get("after_seq"), name: "after_seq", default: 0, range: 0...Int(Int32.max)))
            let limit = try RouteHelpers.intParameter(q.get("limit"), name: "limit", default: 100, range: 1...10_000)
            let query = filter
            let entries: [AuditEntry]
            do { entries = try await store.listAudit(query, limit: limit) } catch {
                throw APIError(.serviceUnavailable, "store_unavailable", "the audit log cannot be read: \(error)")
            }
            if request.headers[.accept]?.contains("application/x-ndjson") == true {
                let text = entries.map { $0.json.serialized(sortedKeys: true) + "\n" }.joined()
                return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: .init(byteBuffer: ByteBuffer(string: text)))
            }
            return JSONIO.response(["entries": .array(entries.map(\.json)), "next_after_seq": entries.last.map { .int(Int($0.seq)) } ?? .null])
        }

        on(router, .get, "/v1/audit/verify") { [self] _, context in
            let store = try requireAudit(context)
            let result: (entries: Int64, broken: (seq: Int64, problem: String)?)
            do { result = try await store.verifyAudit() } catch {
                throw APIError(.serviceUnavailable, "store_unavailable", "the audit log cannot be read: \(error)")
            }
            return JSONIO.response(["entries": .int(Int(result.entries)), "intact": .bool(result.broken == nil),
                                    "broken": result.broken.map { ["seq": .int(Int($0.seq)), "problem": .string($0.problem)] } ?? .null])
        }
    }

    func requireAudit(_ context: ServerContext) throws -> any AuditStore {
        let caller = try context.requireCaller()
        guard caller.isAdmin else { throw APIError(.forbidden, "forbidden", "the audit log is for admin roles (\(config.adminRoles.joined(separator: ", ")))") }
        guard let store = host.auditStore else { throw APIError(.serviceUnavailable, "store_unavailable", "this server has no store, so no audit log") }
        return store
    }
}
