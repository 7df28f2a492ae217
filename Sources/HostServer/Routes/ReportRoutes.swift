import Foundation
import Host
import Hummingbird
import JSON
import NIOCore
import Reports

extension NovaServer {
    /// `GET /v1/reports/status?since=24h&agent=NAME`: the status report of the window, JSON by
    /// default, Markdown for `Accept: text/markdown`, HTML for `Accept: text/html`. Admin roles
    /// see every run; other callers see their own principal's runs and agents.
    func addReportRoutes(_ router: Router<ServerContext>) {
        on(router, .get, "/v1/reports/status") { [self] request, context in
            let caller = try context.requireCaller()
            let q = request.uri.queryParameters
            let since = q.get("since") ?? "24h"
            guard ReportWindow.milliseconds(since) != nil else { throw APIError.badRequest("invalid_parameter", ReportWindow.help) }
            var agent: String?
            if let a = q.get("agent") {
                guard !a.isEmpty else { throw APIError.badRequest("invalid_parameter", "agent must not be empty") }
                agent = a
            }
            guard let log = host.episodes else {
                throw APIError(.serviceUnavailable, "store_unavailable", "this server has no data directory")
            }
            let format = Self.reportFormat(accept: request.headers[.accept])
            let report: StatusReport
            do {
                report = try await StatusReportBuilder(log: log).build(window: since, principal: caller.isAdmin ? nil : caller.principal, agent: agent)
            } catch let e as ReportError {
                // An agent of someone else is not acknowledged: the same answer as no agent.
                throw APIError.notFound(e.message)
            } catch {
                throw APIError(.serviceUnavailable, "store_unavailable", "the report cannot be read from the store: \(error)")
            }
            if format == .json { return JSONIO.response(report.json) }
            var headers = HTTPFields()
            headers[.contentType] = format.contentType
            headers[.vary] = "Accept"
            return Response(status: .ok, headers: headers,
                            body: ResponseBody(byteBuffer: ByteBuffer(string: StatusReportRenderer.render(report, as: format))))
        }
    }

    /// JSON unless `Accept` prefers Markdown or HTML (the first of them it names, by quality).
    static func reportFormat(accept: String?) -> ReportFormat {
        guard let accept else { return .json }
        var best: (format: ReportFormat, q: Double)?
        for part in accept.split(separator: ",") {
            let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let type = fields.first else { continue }
            let q = fields.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            let format: ReportFormat?
            switch type {
            case "text/markdown", "text/x-markdown": format = .md
            case "text/html": format = .html
            case "application/json", "*/*", "application/*": format = .json
            default: format = nil
            }
            if let format, q > 0, q > (best?.q ?? -1) { best = (format, q) }
        }
        return best?.format ?? .json
    }
}
