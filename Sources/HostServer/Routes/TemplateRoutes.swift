import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /v1/templates`, `GET /v1/templates/{name}`, `GET /v1/templates/{name}/{version}`,
    /// `POST /v1/templates` (admin), `POST /v1/templates/reload` (admin: import the templates
    /// directory), `POST /v1/templates/{name}/render`. Any caller may read and
    /// render templates; only admins create versions.
    func addTemplateRoutes(_ router: Router<ServerContext>) {
        on(router, .get, "/v1/templates") { [self] _, context in
            _ = try context.requireCaller()
            let all = try await templateCall { try await self.requireTemplates().list() }
            return JSONIO.response(["templates": .array(all.map { $0.template.summary(source: $0.stored.source) })])
        }

        on(router, .post, "/v1/templates") { [self] request, context in
            let caller = try context.requireCaller()
            guard caller.isAdmin else { throw APIError(.forbidden, "forbidden", "creating templates needs an admin role") }
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            let template = try Self.parseTemplate(body)
            let problems = await host.runner.validate(try template.placeholderPlan(), chain: [template.name])
            if !problems.isEmpty {
                throw APIError(.unprocessableContent, "invalid_template", problems.map(\.description).joined(separator: "\n"),
                               extra: ["details": RouteHelpers.details(problems)])
            }
            let outcome = try await templateCall { try await self.requireTemplates().put(template, source: "api", by: caller.principal) }
            switch outcome {
            case .created:
                await host.audit("template.create", target: template.id, detail: ["hash": .string(template.hash)])
                context.logger.notice("template created", metadata: ["template": .string(template.id), "by": .string(caller.principal)])
                return JSONIO.response(template.summary(source: "api"), status: .created, headers: [.location: "/v1/templates/\(template.name)/\(template.version)"])
            case .unchanged:
                return JSONIO.response(template.summary(source: "api"))
            case .conflict(let existing):
                throw APIError(.conflict, "version_exists", "\(template.id) already exists with other content (\(existing)); versions never change: use a new version",
                               extra: ["hash": .string(existing)])
            }
        }

        on(router, .post, "/v1/templates/reload") { [self] _, context in
            let caller = try context.requireCaller()
            guard caller.isAdmin else { throw APIError(.forbidden, "forbidden", "reloading templates needs an admin role") }
            guard let report = await syncTemplates() else { throw APIError(.serviceUnavailable, "store_unavailable", "this server has no store, so no templates") }
            return JSONIO.response(report.json)
        }

        on(router, .get, "/v1/templates/{name}") { [self] _, context in
            _ = try context.requireCaller()
            let name = context.parameters.get("name") ?? ""
            let versions = try await templateCall { try await self.requireTemplates().list(name: name) }
            guard !versions.isEmpty else { throw APIError.notFound("no template \(name)") }
            return JSONIO.response(["name": .string(name), "versions": .array(versions.map { $0.template.summary(source: $0.stored.source) })])
        }

        on(router, .get, "/v1/templates/{name}/{version}") { [self] _, context in
            _ = try context.requireCaller()
            let t = try await resolveTemplate(context.parameters.get("name") ?? "", context.parameters.get("version") ?? "")
            return JSONIO.response(["template": t.summary(), "document": t.document])
        }

        on(router, .post, "/v1/templates/{name}/render") { [self] request, context in
            _ = try context.requireCaller()
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes, empty: .object([:]))
            guard body.objectValue != nil else { throw APIError.badRequest("invalid_request", "the body is {\"version\": \"1\", \"params\": {…}}") }
            let ref = JSONValue.string((context.parameters.get("name") ?? "") + (body["version"]?.stringValue.map { "@" + $0 } ?? ""))
            let (plan, provenance) = try await renderTemplate(ref, params: body["params"])
            return JSONIO.response(["plan": plan.source, "template": provenance.json])
        }
    }

    /// Imports the templates directory (start, SIGHUP, `POST /v1/reload`) and logs what changed.
    @discardableResult
    public func syncTemplates() async -> TemplateSyncReport? {
        guard let report = await host.syncTemplates() else { return nil }
        if !report.created.isEmpty { logger.notice("templates imported: \(report.created.joined(separator: ", "))") }
        for e in report.errors { logger.error("template file \(e.file) refused: \(e.message)") }
        return report
    }

    /// A template document from a request body (422 naming every problem).
    static func parseTemplate(_ body: JSONValue) throws -> PlanTemplate {
        do { return try PlanTemplate(document: body) } catch {
            throw APIError(.unprocessableContent, "invalid_template", error.description, extra: ["details": details(error)])
        }
    }

    static func details(_ e: TemplateErrors) -> JSONValue {
        .array(e.errors.map { ["field": $0.field.map(JSONValue.string) ?? .null, "message": .string($0.message)] })
    }

    func requireTemplates() throws -> TemplateLibrary {
        guard let t = host.templates else { throw APIError(.serviceUnavailable, "store_unavailable", "this server has no store, so no templates") }
        return t
    }

    /// PlanTemplate store work with its errors as API errors.
    func templateCall<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as APIError { throw e } catch let e as TemplateLookupError {
            switch e {
            case .unknown, .noMatchingVersion: throw APIError.notFound(e.description)
            default: throw APIError(.serviceUnavailable, "store_unavailable", e.description)
            }
        } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the template store cannot be reached: \(error)")
        }
    }

    func resolveTemplate(_ name: String, _ version: String) async throws -> PlanTemplate {
        let ref: TemplateRef
        do { ref = try TemplateRef.parse(version.isEmpty ? name : name + "@" + version) } catch {
            throw APIError.badRequest("invalid_parameter", error.message)
        }
        return try await templateCall { try await self.requireTemplates().resolve(ref) }
    }

    /// The plan of `template` (`"name@version"`) with `params`; 404 for an unknown template,
    /// 422 for params that do not fit.
    func renderTemplate(_ template: JSONValue, params: JSONValue?) async throws -> (Plan, TemplateProvenance) {
        guard let text = template.stringValue else { throw APIError(.unprocessableContent, "invalid_request", "template must be a string like \"restock@1\"") }
        let parts = text.split(separator: "@", maxSplits: 1).map(String.init)
        let t = try await resolveTemplate(parts.first ?? "", parts.count > 1 ? parts[1] : "")
        do {
            let r = try t.render(params: params ?? .object([:]))
            return (r.plan, r.provenance)
        } catch {
            throw APIError(.unprocessableContent, "invalid_params", "template \(t.id): \(error.description)", extra: ["details": Self.details(error)])
        }
    }
}
