import Foundation
import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /ui/drivers`: every driver of the registry (`host.registry.statuses()`, as
    /// `GET /v1/drivers` lists them through `DriverViews.status`): state, version, the serving
    /// generation and the old ones still mapped, the serving file's SHA-256, isolation mode,
    /// calls in flight, load error and last reload error; the file path only for admin roles
    /// (as REST shows it). Admin roles also get **Reload drivers** (`POST /ui/drivers/reload`,
    /// the overview's handler, refused server-side for anyone else).
    func addDashboardDriverRoutes(_ router: Router<ServerContext>) {
        onUI(router, .get, "/ui/drivers") { [self] request, ui in
            let statuses = host.registry.statuses().sorted { $0.name < $1.name }
            let notice = request.uri.queryParameters.get("notice").flatMap(Self.dashboardNotice)
            return UIHTML.response(UIHTML.page(title: "Drivers", section: "/ui/drivers", viewer: ui.viewer, notice: notice,
                                               body: Self.driversBody(statuses, caller: ui.caller, csrf: ui.csrfToken,
                                                                      directory: ui.caller.isAdmin ? host.paths.driversDirectory : nil)))
        }
    }

    static func driversBody(_ statuses: [DriverStatus], caller: Caller, csrf: String, directory: String?) -> String {
        var h = "<h1>Drivers</h1>\n<p>\(statuses.count) driver(s)"
        if let directory { h += " from <code>\(UIHTML.escape(directory))</code>" }
        h += ".</p>\n"
        let rows: [[String]] = statuses.map { s in
            // The REST view decides what this caller sees (the path only for admin roles).
            let view = DriverViews.status(s, showPath: caller.isAdmin)
            let id = "driver-" + s.name
            var name = "<span id=\"\(UIHTML.escape(id))\">\(UIHTML.escape(s.name))</span>"
            if let path = view["path"]?.stringValue { name += "<br><code class=\"path\">\(UIHTML.escape(path))</code>" }
            let generations = s.generation.map { "\($0)" + (s.retainedGenerations > 0 ? " (+\(s.retainedGenerations) old still mapped)" : "") }
                ?? (s.retainedGenerations > 0 ? "– (+\(s.retainedGenerations) old still mapped)" : "–")
            var errors: [String] = []
            if let e = view["error"]?.stringValue { errors.append("<span class=\"error\">\(UIHTML.escape(e))</span>") }
            if let e = view["reload_error"]?.stringValue { errors.append("<span class=\"error\">Last reload: \(UIHTML.escape(e))</span>") }
            return [name, UIHTML.badge(s.state), UIHTML.escape(view["version"]?.stringValue ?? "–"), UIHTML.escape(generations),
                    s.sha256.map { "<code class=\"sha\">\(UIHTML.escape($0))</code>" } ?? "–",
                    UIHTML.escape(s.isolation.rawValue), String(view["in_flight"]?.intValue ?? s.inFlight),
                    UIHTML.escape(s.loadedAt ?? "–"), errors.isEmpty ? "–" : errors.joined(separator: "<br>")]
        }
        h += UIHTML.table(caption: "Drivers", headers: ["Driver", "State", "Version", "Generation", "SHA-256", "Isolation", "In flight",
                                                        "Loaded", "Errors"], rows: rows, id: "drivers")
        if statuses.isEmpty { h += "<p class=\"empty\">No drivers.</p>" }
        h += "<p>A driver not used yet is <em>discovered</em>: it is opened (and its SHA-256 known) at its first call.</p>\n"
        if caller.isAdmin {
            h += """
            <form method="post" action="/ui/drivers/reload" class="actions">\(UIHTML.csrfField(csrf))
            <input type="hidden" name="from" value="drivers">
            <button type="submit" id="reload-drivers">Reload drivers</button>
            </form>
            """
        }
        return h
    }
}
