import Foundation
import Hummingbird
import JSON
import NIOCore

/// Server-side HTML for the dashboard: escaping and the page frame. Pages are plain HTML5; the
/// only script and style are the embedded `/ui/assets/app.js` and `app.css` (the CSP allows
/// nothing else: no inline scripts, handlers or `style` attributes).
enum UIHTML {
    /// The Content-Security-Policy of every `/ui` response.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    /// `s` with `& < > " '` escaped: safe in text and in quoted attribute values.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// A path segment or query value percent-encoded (unreserved characters kept).
    static func urlComponent(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// JSON pretty-printed in a `<pre>`, escaped.
    static func json(_ value: JSONValue) -> String {
        "<pre class=\"json\">\(escape(value.serialized(pretty: true, sortedKeys: true)))</pre>"
    }

    /// A hidden field carrying the CSRF token.
    static func csrfField(_ token: String) -> String {
        "<input type=\"hidden\" name=\"csrf\" value=\"\(escape(token))\">"
    }

    /// Who is signed in, for the page frame.
    struct Viewer {
        var principal: String
        var role: String
        var isAdmin: Bool
        var csrfToken: String
    }

    /// The sections of the navigation, by path.
    static let sections: [(path: String, label: String)] = [
        ("/ui", "Overview"), ("/ui/runs", "Runs"), ("/ui/agents", "Agents"), ("/ui/approvals", "Approvals"),
        ("/ui/drivers", "Drivers"), ("/ui/jobs", "Jobs"),
    ]

    /// A whole page: head with the assets, a skip link, the navigation (with the current section
    /// marked), who is signed in with a logout button, an optional notice, then `body` in `<main>`.
    static func page(title: String, section: String?, viewer: Viewer?, notice: String? = nil, body: String) -> String {
        var h = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title)) · nova-host</title>
        <link rel="stylesheet" href="/ui/assets/app.css?v=\(UIAssets.version)">
        <script src="/ui/assets/app.js?v=\(UIAssets.version)" defer></script>
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
        <span class="brand">nova-host</span>

        """
        if let viewer {
            h += "<nav aria-label=\"Sections\"><ul>"
            for s in sections {
                let current = s.path == section ? " aria-current=\"page\"" : ""
                h += "<li><a href=\"\(s.path)\"\(current)>\(s.label)</a></li>"
            }
            h += "</ul></nav>\n"
            h += "<form class=\"who\" method=\"post\" action=\"/ui/logout\">\(csrfField(viewer.csrfToken))"
            h += "<span id=\"whoami\">\(escape(viewer.principal)) <span class=\"role\">(\(escape(viewer.role)))</span></span> "
            h += "<button type=\"submit\">Log out</button></form>\n"
        }
        h += "</header>\n<main id=\"main\" tabindex=\"-1\">\n"
        if let notice { h += "<p class=\"notice\" role=\"status\">\(escape(notice))</p>\n" }
        h += body
        h += "\n</main>\n</body>\n</html>\n"
        return h
    }

    /// An HTML response with the dashboard's headers (CSP, no caching).
    static func response(_ html: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = "text/html; charset=utf-8"
        h[.contentSecurityPolicy] = contentSecurityPolicy
        h[.cacheControl] = "no-store"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    /// A 303 redirect to `location` (after a form post, or to the login page).
    static func redirect(_ location: String, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.location] = location
        h[.contentSecurityPolicy] = contentSecurityPolicy
        return Response(status: .seeOther, headers: h)
    }

    /// A status badge (`<span class="badge status-…">`).
    static func badge(_ status: String) -> String {
        let cls = status.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || $0 == "_" } ? status : "unknown"
        return "<span class=\"badge status-\(cls)\">\(escape(status))</span>"
    }

    /// `content` (a wide table) in a region that scrolls sideways on its own, so a narrow
    /// window never scrolls the whole page; focusable, so the keyboard can scroll it too.
    static func scroll(_ label: String, _ content: String) -> String {
        "<div class=\"scroll\" role=\"region\" aria-label=\"\(escape(label))\" tabindex=\"0\">\(content)</div>"
    }

    /// A table: `caption`, column headers, rows of already-escaped cells.
    static func table(caption: String, headers: [String], rows: [[String]], id: String? = nil, empty: String = "None.") -> String {
        guard !rows.isEmpty || id != nil else { return "<p class=\"empty\">\(escape(empty))</p>" }
        var h = "<table\(id.map { " id=\"\($0)\"" } ?? "")><caption>\(escape(caption))</caption><thead><tr>"
        for c in headers { h += "<th scope=\"col\">\(escape(c))</th>" }
        h += "</tr></thead><tbody>"
        for r in rows { h += "<tr>" + r.map { "<td>\($0)</td>" }.joined() + "</tr>" }
        h += "</tbody></table>"
        return scroll(caption, h)
    }
}
