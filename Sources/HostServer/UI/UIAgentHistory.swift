import Foundation
import Host
import Hummingbird
import JSON

extension NovaServer {
    /// The agent page's memory: a recall box and its hits, through `recallMemory` (the code of
    /// `GET /v1/agents/{id}/recall`: full-text, best first; without a query the newest items).
    /// A query the full-text engine refuses is shown as an error in the section.
    func agentMemorySection(_ service: AgentService, _ agent: Agent, _ q: Parameters) async throws -> String {
        let text = q.get("q") ?? ""
        var h = "<h2 id=\"memory\">Memory</h2>\n"
        h += "<form class=\"filters\" method=\"get\" action=\"/ui/agents/\(UIHTML.urlComponent(agent.id))#memory\" role=\"search\">\n"
        h += "<div><label for=\"recall\">Recall (full-text)</label>\n"
        h += "<input type=\"search\" id=\"recall\" name=\"q\" value=\"\(UIHTML.escape(text))\" maxlength=\"1000\"></div>\n"
        h += "<button type=\"submit\">Recall</button>\n</form>\n"
        let hits: [RecallHit]
        do { hits = try await recallMemory(service, agent, q).hits } catch let e as APIError where e.status.code < 500 {
            return h + "<p class=\"error\" role=\"alert\" id=\"recall-error\">\(UIHTML.escape(e.message))</p>\n"
        }
        let caption = text.isEmpty ? "The agent's newest memories" : "Memories matching \u{201C}\(text)\u{201D}, best first"
        var headers = ["Memory", "Type", "Tags", "Source run", "Created"]
        if !text.isEmpty { headers.append("Score") }
        h += UIHTML.table(caption: caption, headers: headers, rows: hits.map { hit in
            let m = hit.item
            var row = ["<span class=\"memory-text\">\(UIHTML.escape(m.text))</span>", UIHTML.escape(m.type), UIHTML.escape(m.tags.joined(separator: ", ")),
                       m.sourceRunId.map { "<a href=\"/ui/runs/\(UIHTML.urlComponent($0))\">\(UIHTML.escape($0))</a>" } ?? "–",
                       UIHTML.escape(Self.dashboardTime(m.createdAtMs))]
            if !text.isEmpty { row.append(String(format: "%.3g", hit.score)) }
            return row
        }, id: "memories")
        if hits.isEmpty { h += "<p class=\"empty\" id=\"memories-empty\">\(text.isEmpty ? "No memories." : "Nothing recalled.")</p>\n" }
        return h
    }

    /// What the store keeps of the agent's history: every version of its definition (newest
    /// first, with the fields each changed), its versioned state (each key's current value and
    /// version) and the state change log as far back as it was not compacted.
    func agentHistorySection(_ service: AgentService, _ agent: Agent) async throws -> String {
        let versions = try await agentCall { try await service.versions(agent.id) }
        var h = "<h2 id=\"versions\">Versions</h2>\n<p>Every change to the agent's definition makes a version; every version is kept (\(versions.count)).</p>\n"
        let shown = Array(versions.reversed().prefix(50))
        h += UIHTML.table(caption: "Versions of the agent's definition, newest first", headers: ["Version", "Status", "Updated", "Changed"],
                          rows: shown.map { v in
                              let previous = versions.last { $0.version < v.version }
                              let changed = previous.map { Self.changedFields($0, v) } ?? ["created"]
                              return ["<span id=\"version-\(v.version)\">\(v.version)</span>", UIHTML.badge(v.status.rawValue), UIHTML.escape(v.updatedAt),
                                      UIHTML.escape(changed.isEmpty ? "–" : changed.joined(separator: ", "))]
                          }, id: "agent-versions")
        if versions.count > shown.count { h += "<p>The \(versions.count - shown.count) oldest versions are not shown (REST: <code>GET /v1/agents/{id}/versions</code>).</p>\n" }

        h += "<h2 id=\"state\">State</h2>\n"
        let entries: [StateEntry]
        let step: AgentService.WatchStep
        do {
            entries = try await agentCall { try await service.stateList(agent.id, prefix: "", limit: 51) }
            step = try await agentCall { try await service.watchStep(agentId: agent.id, after: 0) }
        } catch let e as APIError where e.status == .serviceUnavailable {
            return h + "<p class=\"empty\">\(UIHTML.escape(e.message))</p>\n"
        }
        h += UIHTML.table(caption: "State keys (their current value and version)", headers: ["Key", "Version", "Revision", "Updated", "Value"],
                          rows: entries.prefix(50).map { e in
                              ["<code>\(UIHTML.escape(e.key))</code>", String(e.version), String(e.revision), UIHTML.escape(e.updatedAt), Self.shortJSON(e.value)]
                          }, id: "state-keys")
        if entries.isEmpty { h += "<p class=\"empty\">No state.</p>\n" }
        if entries.count > 50 { h += "<p>Only the first 50 keys are shown (REST: <code>GET /v1/agents/{id}/state</code>).</p>\n" }
        switch step {
        case .changes(let changes, _):
            let newest = Array(changes.reversed().prefix(50))
            h += UIHTML.table(caption: "State changes, newest first", headers: ["Revision", "Key", "Operation", "Version", "Value"],
                              rows: newest.map { c in
                                  [String(c.revision), "<code>\(UIHTML.escape(c.key))</code>", UIHTML.escape(c.op), String(c.version), c.value.map(Self.shortJSON) ?? "–"]
                              }, id: "state-changes")
            if changes.count == 500 { h += "<p>More changes are kept than shown: the log is read 500 at a time from its oldest (REST: <code>GET /v1/agents/{id}/watch</code>).</p>\n" }
            else if changes.count > newest.count { h += "<p>The \(changes.count - newest.count) older changes kept are not shown.</p>\n" }
        case .snapshot(_, let revision):
            h += "<p id=\"state-compacted\">The change log was compacted up to revision \(revision): earlier values of these keys are no longer kept.</p>\n"
        }
        return h
    }

    /// The top-level fields whose value differs between two versions of an agent.
    static func changedFields(_ old: Agent, _ new: Agent) -> [String] {
        let a = old.json.objectValue ?? [:], b = new.json.objectValue ?? [:]
        return Set(a.keys).union(b.keys).subtracting(["version", "updated_at"]).filter { a[$0] != b[$0] }.sorted()
    }

    /// A JSON value for a table cell: compact, at most 300 characters.
    static func shortJSON(_ value: JSONValue) -> String {
        let text = value.serialized(sortedKeys: true)
        return "<code>\(UIHTML.escape(text.count > 300 ? String(text.prefix(300)) + "…" : text))</code>"
    }

    /// The notice a redirect's `notice` names, for the pages of this file and the others.
    static func dashboardPageNotice(_ key: String) -> String? {
        switch key {
        case "goal_submitted": return "Goal submitted: it is queued as a run of the agent."
        case "dlq_replayed": return "Dead letters replayed: they are ready for the subscription again."
        case "dlq_purged": return "Dead letters purged."
        default: return dashboardNotice(key)
        }
    }
}
