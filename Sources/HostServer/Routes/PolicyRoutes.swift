import Host
import Hummingbird
import JSON
import Logging

extension NovaServer {
    /// `GET /v1/policy` (the profile in use and the last reload's error) and
    /// `POST /v1/policy/reload` (admin roles).
    func addPolicyRoutes(_ router: Router<ServerContext>) {
        on(router, .get, "/v1/policy") { [self] _, context in
            let caller = try context.requireCaller()
            let status = host.policyStatus
            var o: [String: JSONValue] = ["hash": .string(status.hash), "loaded_at": .string(status.loadedAt),
                                          "reload_error": status.reloadError.map { .string($0) } ?? .null]
            if caller.isAdmin {
                o["file"] = status.file.map { .string($0) } ?? .null
                o["profile"] = host.policy.profile.raw
            }
            return JSONIO.response(.object(o))
        }

        on(router, .post, "/v1/policy/reload") { [self] _, context in
            let caller = try context.requireCaller()
            guard caller.isAdmin else {
                throw APIError(.forbidden, "forbidden", "reloading the policy needs an admin role (\(config.adminRoles.joined(separator: ", ")))")
            }
            let report = reloadPolicy()
            let body = PolicyViews.report(report)
            if report.outcome == .failed {
                throw APIError(.unprocessableContent, "policy_invalid", report.error ?? "the policy could not be reloaded",
                               extra: body.objectValue ?? [:])
            }
            return JSONIO.response(body)
        }
    }

    /// Re-reads the policy file. Besides the profile's own checks, the new profile must keep
    /// every role the server's API keys use (else those keys would stop working). Logs and
    /// counts the outcome. SIGHUP calls it too.
    public func reloadPolicy() -> PolicyReloadReport {
        let report = host.reloadPolicy { [config] profile in config.problems(against: profile) }
        metrics.policyReloaded(report)
        let (host, detail): (NovaHost, JSONValue) = (self.host, PolicyViews.report(report))
        let actor = AuditActor.principal ?? "system"
        Task { await host.audit("policy.reload", detail: detail, actor: actor) }
        let log = logger.channel(.systemLog)
        let metadata: Logger.Metadata = ["outcome": .string(report.outcome.rawValue), "hash": .string(report.hash)]
        if report.outcome == .failed { log.error("\(report)", metadata: metadata) } else { log.notice("\(report)", metadata: metadata) }
        return report
    }
}

/// JSON views of policy reloads.
enum PolicyViews {
    static func report(_ r: PolicyReloadReport) -> JSONValue {
        var o: [String: JSONValue] = ["outcome": .string(r.outcome.rawValue), "hash": .string(r.hash), "previous_hash": .string(r.previousHash)]
        if let e = r.error { o["error"] = .string(e) }
        return .object(o)
    }
}
