import JSON

/// The formats a status report renders to.
public enum ReportFormat: String, Sendable, CaseIterable {
    case json, md, html

    /// The HTTP media type of the format.
    public var contentType: String {
        switch self {
        case .json: "application/json"
        case .md: "text/markdown; charset=utf-8"
        case .html: "text/html; charset=utf-8"
        }
    }
}

/// Renders a `StatusReport`: JSON, Markdown (tables) or a self-contained HTML page (inline CSS
/// and SVG bar charts and sparkline; no scripts, no external assets).
public enum StatusReportRenderer {
    /// The report in `format`.
    public static func render(_ report: StatusReport, as format: ReportFormat) -> String {
        switch format {
        case .json: report.json.serialized(pretty: true, sortedKeys: true)
        case .md: markdown(report)
        case .html: html(report)
        }
    }

    static func ms(_ v: Double) -> String {
        v < 1 ? "\(Int((v * 1000).rounded())) µs" : v < 1000 ? "\((v * 10).rounded() / 10) ms" : "\((v / 100).rounded() / 10) s"
    }

    static func percent(_ v: Double) -> String { "\((v * 1000).rounded() / 10)%" }

    static func remainingText(_ v: JSONValue) -> String {
        let o = v.objectValue ?? [:]
        if o.isEmpty { return "—" }
        return o.keys.sorted().map { id in
            let figures = o[id]?.objectValue ?? [:]
            return id + " " + figures.keys.sorted().map { "\($0) \(figures[$0]!.serialized())" }.joined(separator: ", ")
        }.joined(separator: "; ")
    }

    static func scope(_ r: StatusReport) -> String {
        var s = "\(r.window) (\(r.since) to \(r.until))"
        if let a = r.agent { s += ", agent \(a)" } else if let p = r.principal { s += ", principal \(p)" }
        return s
    }

    // MARK: Markdown

    /// Markdown with one table per section (cells escaped).
    public static func markdown(_ r: StatusReport) -> String {
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        func table(_ head: [String], _ rows: [[String]]) -> String {
            guard !rows.isEmpty else { return "_none_\n" }
            var t = "| " + head.joined(separator: " | ") + " |\n|" + head.map { _ in " --- |" }.joined() + "\n"
            for row in rows { t += "| " + row.map(cell).joined(separator: " | ") + " |\n" }
            return t
        }
        var md = "# Status report\n\n"
        md += "Window: \(scope(r))\(r.truncated ? " — only the newest runs were read" : "")\n\n"
        md += "## Runs\n\n"
        md += "\(r.totalRuns) runs, success rate \(percent(r.successRate)), p50 \(ms(r.durations.p50Ms)), p95 \(ms(r.durations.p95Ms))\n\n"
        md += table(["Status", "Runs"], r.runsByStatus.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { [$0.key, String($0.value)] })
        md += "\n## Plans\n\n"
        md += table(["Plan", "Runs", "Succeeded", "p50", "p95"], r.plans.map { [$0.plan, String($0.runs), String($0.succeeded), ms($0.duration.p50Ms), ms($0.duration.p95Ms)] })
        md += "\n## Tools\n\n"
        md += table(["Tool", "Calls", "Errors", "p50", "p95"], r.tools.map { [$0.tool, String($0.calls), String($0.errors), ms($0.duration.p50Ms), ms($0.duration.p95Ms)] })
        md += "\n## Denials by rule\n\n"
        md += table(["Rule", "Denials", "Tools", "Example runs"], r.denials.map { [$0.rule, String($0.count), $0.tools.joined(separator: ", "), $0.exampleRuns.joined(separator: ", ")] })
        md += "\n## Budgets\n\n"
        md += table(["Principal", "Calls", "Tokens", "Cost (µ)", "Remaining (latest decision)"],
                    r.budgets.map { [$0.principal, String($0.calls), String($0.tokens), String($0.costMicros), remainingText($0.remaining)] })
        md += "\n## Top errors\n\n"
        md += table(["Error", "Runs", "Example runs"], r.errors.map { [$0.message, String($0.count), $0.exampleRuns.joined(separator: ", ")] })
        md += "\n## Agents\n\n"
        md += table(["Agent", "Principal", "Status", "Version"], r.agents.map { ["\($0.namespace)/\($0.name)", $0.principal, $0.status, String($0.version)] })
        md += "\n## Jobs\n\n"
        if let jobs = r.jobsByState {
            md += "Dead-letter queue: \(r.dlqDepth ?? 0)\n\n"
            md += table(["State", "Jobs"], jobs.sorted { $0.key < $1.key }.map { [$0.key, String($0.value)] })
        } else {
            md += "_this store has no job queue_\n"
        }
        return md
    }

    // MARK: HTML

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A horizontal bar chart as inline SVG.
    static func bars(_ items: [(label: String, value: Double, text: String)], color: String = "#3b6ea5") -> String {
        guard !items.isEmpty else { return "<p class=\"none\">none</p>" }
        let rowH = 22, labelW = 220, barW = 360, h = items.count * rowH + 4
        let top = max(items.map(\.value).max() ?? 1, 1e-9)
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"\(labelW + barW + 90)\" height=\"\(h)\">"
        for (i, item) in items.enumerated() {
            let y = i * rowH + 2
            let w = max(1, Int((item.value / top) * Double(barW)))
            svg += "<text x=\"\(labelW - 6)\" y=\"\(y + 15)\" text-anchor=\"end\" font-size=\"12\">\(escape(String(item.label.prefix(34))))</text>"
            svg += "<rect x=\"\(labelW)\" y=\"\(y + 3)\" width=\"\(w)\" height=\"\(rowH - 6)\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(labelW + w + 6)\" y=\"\(y + 15)\" font-size=\"12\">\(escape(item.text))</text>"
        }
        return svg + "</svg>"
    }

    /// A sparkline of `values` as inline SVG (with the unsuccessful runs as a second line).
    static func sparkline(_ values: [Int], _ bad: [Int]) -> String {
        let w = 480, h = 60
        let top = max(values.max() ?? 0, 1)
        func points(_ v: [Int]) -> String {
            let step = v.count > 1 ? Double(w - 4) / Double(v.count - 1) : 0
            return v.enumerated().map { i, x in
                "\(Int(2 + Double(i) * step)),\(Int(Double(h - 4) - Double(x) / Double(top) * Double(h - 8)) + 2)"
            }.joined(separator: " ")
        }
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"\(w)\" height=\"\(h)\">"
            + "<polyline fill=\"none\" stroke=\"#3b6ea5\" stroke-width=\"2\" points=\"\(points(values))\"/>"
            + "<polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"1.5\" points=\"\(points(bad))\"/></svg>"
    }

    /// A self-contained HTML page.
    public static func html(_ r: StatusReport) -> String {
        func table(_ head: [String], _ rows: [[String]]) -> String {
            guard !rows.isEmpty else { return "<p class=\"none\">none</p>" }
            return "<table><thead><tr>" + head.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead><tbody>"
                + rows.map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }.joined() + "</tbody></table>"
        }
        let statusColors = ["succeeded": "#2e8b57", "failed": "#c0392b", "denied": "#d68910", "cancelled": "#7f8c8d"]
        var body = "<h1>Status report</h1><p>Window: \(escape(scope(r)))\(r.truncated ? " — only the newest runs were read" : "")</p>"
        body += "<p class=\"kpi\"><b>\(r.totalRuns)</b> runs · success rate <b>\(percent(r.successRate))</b> · p50 <b>\(ms(r.durations.p50Ms))</b> · p95 <b>\(ms(r.durations.p95Ms))</b>"
        if let dlq = r.dlqDepth { body += " · dead-letter queue <b>\(dlq)</b>" }
        body += "</p><h2>Runs over time</h2>" + sparkline(r.timeline.map(\.runs), r.timeline.map(\.unsuccessful))
        body += "<p class=\"legend\">blue: runs · red: not succeeded</p><h2>Runs by status</h2>"
        for (status, n) in r.runsByStatus.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
            body += bars([(label: status, value: Double(n), text: String(n))], color: statusColors[status] ?? "#3b6ea5")
        }
        if r.runsByStatus.isEmpty { body += "<p class=\"none\">none</p>" }
        body += "<h2>Plans</h2>" + bars(r.plans.map { (label: $0.plan, value: $0.duration.p95Ms, text: "p95 " + ms($0.duration.p95Ms)) })
        body += table(["Plan", "Runs", "Succeeded", "p50", "p95"], r.plans.map { [$0.plan, String($0.runs), String($0.succeeded), ms($0.duration.p50Ms), ms($0.duration.p95Ms)] })
        body += "<h2>Tools</h2>" + bars(r.tools.map { (label: $0.tool, value: Double($0.calls), text: "\($0.calls) calls") })
        body += table(["Tool", "Calls", "Errors", "p50", "p95"], r.tools.map { [$0.tool, String($0.calls), String($0.errors), ms($0.duration.p50Ms), ms($0.duration.p95Ms)] })
        body += "<h2>Denials by rule</h2>" + bars(r.denials.map { (label: $0.rule, value: Double($0.count), text: String($0.count)) }, color: "#d68910")
        body += table(["Rule", "Denials", "Tools", "Example runs"], r.denials.map { [$0.rule, String($0.count), $0.tools.joined(separator: ", "), $0.exampleRuns.joined(separator: ", ")] })
        body += "<h2>Budgets</h2>" + table(["Principal", "Calls", "Tokens", "Cost (µ)", "Remaining (latest decision)"],
                                          r.budgets.map { [$0.principal, String($0.calls), String($0.tokens), String($0.costMicros), remainingText($0.remaining)] })
        body += "<h2>Top errors</h2>" + table(["Error", "Runs", "Example runs"], r.errors.map { [$0.message, String($0.count), $0.exampleRuns.joined(separator: ", ")] })
        body += "<h2>Agents</h2>" + table(["Agent", "Principal", "Status", "Version"], r.agents.map { ["\($0.namespace)/\($0.name)", $0.principal, $0.status, String($0.version)] })
        body += "<h2>Jobs</h2>"
        if let jobs = r.jobsByState {
            body += bars(jobs.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { (label: $0.key, value: Double($0.value), text: String($0.value)) })
        } else {
            body += "<p class=\"none\">this store has no job queue</p>"
        }
        let css = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0}"
            + "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:13px}th{background:#f3f3f3}"
            + ".none{color:#888;font-style:italic}.kpi{font-size:15px}.legend{color:#666;font-size:12px}"
        return "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>nova-host status report</title><style>\(css)</style></head><body>"
            + body + "</body></html>\n"
    }
}
