import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /v1/tools` (every tool, with whether the caller's role may use it) and
    /// `POST /tools/{toolId}` (one call through policy and an episode).
    func addToolRoutes(_ router: Router<ServerContext>) {
        on(router, .get, "/v1/tools") { [self] _, context in
            let caller = try context.requireCaller()
            let tools = await gateway.tools(for: caller)
            return JSONIO.response(["tools": .array(tools.map {
                ToolViews.tool(id: $0.id, driver: $0.driver, version: $0.driverVersion, descriptor: $0.descriptor, allowed: $0.allowed)
            })])
        }

        on(router, .post, "/tools/{toolId}") { [self] request, context in
            let caller = try context.requireCaller()
            let toolId = context.parameters.get("toolId") ?? ""
            let input = try await JSONIO.body(request, limit: config.bodyLimitBytes, empty: .object([:]))
            let gateway = self.gateway
            switch await context.cancellingOnDisconnect({ await gateway.call(toolId: toolId, input: input, caller: caller, origin: "tool") }) {
            case .succeeded(let output, let snap):
                var o: [String: JSONValue] = ["run_id": .string(snap.runId), "tool": .string(toolId), "status": "succeeded",
                                              "output": output, "episode": .null]
                if let r = snap.record { o["duration_ms"] = .double(r.durationMs) }
                if let e = snap.episode { o["episode"] = ["seq": .int(e.seq), "hash": .string(e.hash)] }
                if let e = snap.episodeError { o["episode_error"] = .string(e) }
                var headers = HTTPFields()
                headers[.xRunID] = snap.runId
                return JSONIO.response(.object(o), headers: headers)
            case .failed(let f, let snap):
                var extra: [String: JSONValue] = ["tool": .string(toolId)]
                if let s = snap { extra["run_id"] = .string(s.runId) }
                if let r = f.rule { extra["rule"] = .string(r) }
                if let c = f.toolCode { extra["tool_code"] = .string(c) }
                if f.kind == .denied {
                    context.logger.channel(.systemLog).info("tool call denied", metadata: ["tool": .string(toolId), "rule": .string(f.rule ?? "")])
                }
                var headers = HTTPFields()
                if let s = snap { headers[.xRunID] = s.runId }
                if let ms = f.retryAfterMs {
                    extra["retry_after_ms"] = .int(ms)
                    headers[.retryAfter] = String(max(1, (ms + 999) / 1000))  // whole seconds, rounded up
                }
                throw APIError(HTTPResponse.Status(code: f.status), f.kind.rawValue, f.message, extra: extra, headers: headers)
            }
        }
    }
}
