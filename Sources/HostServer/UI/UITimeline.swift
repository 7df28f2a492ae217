import Foundation
import Host
import JSON

/// The episode timeline of a run: one row per step, one bar per attempt on a common time axis
/// (from each attempt's `started_at` and `duration_ms`; a call that waited for approval gets a
/// `waiting` bar from the request to the decision, and its call bar starts at the decision),
/// coloured by the attempt's outcome, as
/// inline SVG (geometry in attributes, colours from the stylesheet's classes: nothing the CSP
/// would have to allow). Every bar has a `<title>` with the exact figures, and the same facts
/// are in the steps table below it for keyboard and screen-reader users.
enum UITimeline {
    /// One attempt's bar.
    struct Bar {
        var step: String
        var attempt: Int
        var startMs: Double
        var durationMs: Double
        var outcome: String
        var decision: String
    }

    /// The bars of the document's steps (top-level steps; items and sub-runs are counted in
    /// the table, not drawn).
    static func bars(_ document: JSONValue) -> [Bar] {
        var out: [Bar] = []
        for step in document["steps"]?.arrayValue ?? [] {
            let id = step["id"]?.stringValue ?? "?"
            for a in step["attempts"]?.arrayValue ?? [] {
                guard let started = a["started_at"]?.stringValue, var ms = Timestamps.parseMs(started) else { continue }
                let attempt = a["attempt"]?.intValue ?? 1
                // A call that waited for a person: the wait is its own bar, and the call ran once decided.
                if let approval = a["approval"], let asked = approval["requested_at"]?.stringValue.flatMap(Timestamps.parseMs),
                   let decided = approval["decided_at"]?.stringValue.flatMap(Timestamps.parseMs), decided >= asked {
                    let who = approval["decided_by"]?.stringValue.map { " by \($0)" } ?? ""
                    out.append(Bar(step: id, attempt: attempt, startMs: Double(asked), durationMs: Double(decided - asked), outcome: "waiting",
                                   decision: "waiting for approval, \(approval["status"]?.stringValue ?? "decided")\(who)"))
                    ms = max(ms, decided)
                }
                out.append(Bar(step: id, attempt: attempt, startMs: Double(ms), durationMs: a["duration_ms"]?.doubleValue ?? 0,
                               outcome: outcome(a, stepStatus: step["status"]?.stringValue ?? "unknown"),
                               decision: decisionText(a["decision"])))
            }
        }
        return out
    }

    /// What an attempt came to: `denied` (policy), `failed` (an error), else its step's status.
    static func outcome(_ attempt: JSONValue, stepStatus: String) -> String {
        if let d = attempt["decision"]?["decision"]?.stringValue, d != "allow" { return d == "deny" ? "denied" : d }
        if attempt["error"] != nil { return "failed" }
        return stepStatus
    }

    /// `allow (rule)` from a recorded decision; `–` without one.
    static func decisionText(_ decision: JSONValue?) -> String {
        guard let d = decision?["decision"]?.stringValue else { return "–" }
        return "\(d) (\(decision?["rule"]?.stringValue ?? "?"))"
    }

    /// The SVG, or nil when no attempt has a start time.
    static func svg(_ document: JSONValue) -> String? {
        let bars = bars(document)
        guard let t0 = bars.map(\.startMs).min() else { return nil }
        let end = bars.map { $0.startMs + $0.durationMs }.max() ?? t0
        let span = max(end - t0, 1)
        var rows: [String] = []
        for b in bars where !rows.contains(b.step) { rows.append(b.step) }
        let (labelWidth, plotWidth, rowHeight, top) = (180.0, 800.0, 26.0, 24.0)
        let height = top + Double(rows.count) * rowHeight + 8
        var s = "<svg class=\"timeline\" id=\"timeline\" viewBox=\"0 0 \(Int(labelWidth + plotWidth + 20)) \(Int(height))\" role=\"img\" aria-labelledby=\"timeline-title\">"
        s += "<title id=\"timeline-title\">Timeline of \(rows.count) step(s) over \(format(span)) ms</title>"
        s += "<line class=\"axis\" x1=\"\(labelWidth)\" y1=\"18\" x2=\"\(labelWidth + plotWidth)\" y2=\"18\"/>"
        for i in 0...4 {
            let x = labelWidth + plotWidth * Double(i) / 4
            let anchor = i == 0 ? "start" : i == 4 ? "end" : "middle"
            let tick = span * Double(i) / 4
            s += "<text x=\"\(format(x))\" y=\"13\" text-anchor=\"\(anchor)\">\(span < 10 ? String(format: "%.2f", tick) : format(tick)) ms</text>"
        }
        for (i, step) in rows.enumerated() {
            let y = top + Double(i) * rowHeight
            s += "<text x=\"4\" y=\"\(format(y + 16))\">\(UIHTML.escape(String(step.prefix(24))))</text>"
            for b in bars where b.step == step {
                let x = labelWidth + (b.startMs - t0) / span * plotWidth
                let w = max(3, b.durationMs / span * plotWidth)
                let cls = b.outcome.allSatisfy { $0.isLetter || $0 == "_" } ? b.outcome : "unknown"
                s += "<rect class=\"bar status-\(cls)\" x=\"\(format(min(x, labelWidth + plotWidth - 3)))\" y=\"\(format(y + 4))\" width=\"\(format(w))\" height=\"\(format(rowHeight - 8))\">"
                s += "<title>\(UIHTML.escape("\(b.step) attempt \(b.attempt): \(b.outcome), \(format(b.durationMs)) ms, \(b.decision)"))</title></rect>"
            }
        }
        s += "</svg>"
        return s
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v)
    }
}
