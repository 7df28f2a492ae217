import Foundation
import Host
import PostgresStore

/// `--store URL` / `$NOVA_STORE`: where episodes, their index and the policy state live.
/// `sqlite` (the default): episode files under the data directory, indexed in
/// `<data>/nova.sqlite`. A `postgres://…` URL (or libpq key=value pairs starting with `host=`):
/// one PostgreSQL database that every host using it shares — one episode chain, one index, one
/// set of rate-limit and budget counters.
enum StoreOption {
    static let help = "Where episodes and state live: sqlite (default: files under the data dir, <data>/nova.sqlite) or a postgres://user:password@host:port/db URL that several hosts share (default: $NOVA_STORE, or the contents of the file $NOVA_STORE_FILE names)."

    /// The store `url` names, else `$NOVA_STORE`, else the contents of the file `$NOVA_STORE_FILE`
    /// names (a mounted secret: the URL holds the database password, which an environment
    /// variable or an argument would show to `docker inspect` or `ps`), else `configured` (the
    /// `store` of the host config); nil: the default SQLite store of `EpisodeLog`.
    static func open(_ url: String?, configured: String? = nil,
                     environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> (any HostStore)? {
        var chosen = url ?? environment["NOVA_STORE"]
        if chosen == nil, let file = environment["NOVA_STORE_FILE"] { chosen = try readSecretFile(file) }
        let text = (chosen ?? configured ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty || text == "sqlite" { return nil }
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") || text.hasPrefix("host=") {
            return try await PostgresStore.connect(url: text)
        }
        throw StoreOptionError(message: "unknown store '\(text.prefix(24))': use sqlite or a postgres:// URL")
    }

    /// The store URL in the file `path` (`NOVA_STORE_FILE`), without surrounding whitespace; the
    /// error names the file, never its contents.
    static func readSecretFile(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw StoreOptionError(message: "NOVA_STORE_FILE: cannot read \(path)")
        }
        let url = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if url.isEmpty { throw StoreOptionError(message: "NOVA_STORE_FILE: \(path) is empty") }
        return url
    }
}

struct StoreOptionError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
