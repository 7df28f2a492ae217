import Foundation
import Host
import Reports

/// The overview's charts as inline SVG: geometry in attributes, colours from the stylesheet's
/// classes (nothing the CSP would have to allow). Every bar and point has a `<title>` with its
/// figures, and the page repeats them in a table for keyboard and screen-reader users.
enum UICharts {
    static let (width, height, left, top, bottom) = (960.0, 180.0, 44.0, 12.0, 26.0)

    /// `HH:MM` (UTC) of a time in milliseconds since the epoch.
    static func clock(_ ms: Int64) -> String {
        let minutes = (ms / 60_000) % 1440
        return String(format: "%02d:%02d", minutes / 60, minutes % 60)
    }

    /// Runs per bucket: a bar per bucket, succeeded runs below, the others stacked on top.
    static func runs(_ r: ActivityReport, id: String) -> String {
        let buckets = r.aggregates.buckets
        let peak = max(1, buckets.map(\.runs).max() ?? 1)
        let plotW = width - left - 8, plotH = height - top - bottom
        let slot = plotW / Double(buckets.count)
        var s = frame(id: id, title: "Runs \(r.window.bucketLabel), \(r.window.label): \(r.aggregates.runs) runs, at most \(peak) in one bar",
                      peakLabel: String(peak))
        for (i, b) in buckets.enumerated() where b.runs > 0 {
            let x = left + Double(i) * slot + slot * 0.1, w = max(1, slot * 0.8)
            let okH = plotH * Double(b.succeeded) / Double(peak), badH = plotH * Double(b.runs - b.succeeded) / Double(peak)
            let base = top + plotH
            let label = "\(clock(r.bucketStartMs(i))): \(b.runs) runs, \(b.succeeded) succeeded"
            s += "<g class=\"bucket\"><title>\(UIHTML.escape(label))</title>"
            if b.succeeded > 0 { s += rect("ok", x, base - okH, w, okH) }
            if b.runs > b.succeeded { s += rect("bad", x, base - okH - badH, w, badH) }
            s += "</g>"
        }
        return s + axis(r, slot: slot) + "</svg>"
    }

    /// Success rate per bucket with runs: a point per such bucket, joined by a line.
    static func successRate(_ r: ActivityReport, id: String) -> String {
        let buckets = r.aggregates.buckets
        let plotW = width - left - 8, plotH = height - top - bottom
        let slot = plotW / Double(buckets.count)
        var s = frame(id: id, title: "Success rate \(r.window.bucketLabel), \(r.window.label)", peakLabel: "100%")
        var points: [String] = []
        var dots = ""
        for (i, b) in buckets.enumerated() where b.runs > 0 {
            let rate = Double(b.succeeded) / Double(b.runs)
            let x = left + (Double(i) + 0.5) * slot, y = top + plotH * (1 - rate)
            points.append("\(f(x)),\(f(y))")
            dots += "<circle class=\"point\" cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"3\"><title>\(clock(r.bucketStartMs(i))): \(Int((rate * 100).rounded()))% of \(b.runs) runs</title></circle>"
        }
        if points.count > 1 { s += "<polyline class=\"rate\" points=\"\(points.joined(separator: " "))\"/>" }
        return s + dots + axis(r, slot: slot) + "</svg>"
    }

    private static func frame(id: String, title: String, peakLabel: String) -> String {
        var s = "<svg class=\"chart\" id=\"\(id)\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-labelledby=\"\(id)-title\">"
        s += "<title id=\"\(id)-title\">\(UIHTML.escape(title))</title>"
        s += "<line class=\"axis\" x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(height - bottom))\"/>"
        s += "<text x=\"\(f(left - 4))\" y=\"\(f(top + 10))\" text-anchor=\"end\">\(UIHTML.escape(peakLabel))</text>"
        s += "<text x=\"\(f(left - 4))\" y=\"\(f(height - bottom))\" text-anchor=\"end\">0</text>"
        return s
    }

    /// The time axis with five labels.
    private static func axis(_ r: ActivityReport, slot: Double) -> String {
        let y = height - bottom
        var s = "<line class=\"axis\" x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(width - 8))\" y2=\"\(f(y))\"/>"
        let n = r.aggregates.buckets.count
        for k in 0...4 {
            let i = min(n, n * k / 4)
            let x = left + Double(i) * slot
            let anchor = k == 0 ? "start" : k == 4 ? "end" : "middle"
            s += "<text x=\"\(f(x))\" y=\"\(f(y + 16))\" text-anchor=\"\(anchor)\">\(clock(r.bucketStartMs(i)))</text>"
        }
        return s
    }

    private static func rect(_ cls: String, _ x: Double, _ y: Double, _ w: Double, _ h: Double) -> String {
        "<rect class=\"\(cls)\" x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(w))\" height=\"\(f(h))\"/>"
    }

    private static func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
