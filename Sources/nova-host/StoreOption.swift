import Foundation
import Host
import PostgresStore

/// `--store URL` / `$NOVA_STORE`: where episodes, their index and the policy state live.
/// `sqlite` (the default): episode files under the data directory, indexed in
/// `<data>/nova.sqlite`. A `postgres://…` URL (or libpq key=value pairs starting with `host=`):
/// one PostgreSQL database that every host using it shares — one episode chain, one index, one
/// set of rate-limit and budget counters.
enum StoreOption {
    static let help = "Where episodes and state live: sqlite (default: files under the data dir, <data>/nova.sqlite) or a postgres://user:password@host:port/db URL that several hosts share (default: $NOVA_STORE)."

    /// The store `url` names, else `$NOVA_STORE`, else `configured` (the `store` of the host
    /// config); nil: the default SQLite store of `EpisodeLog`.
    static func open(_ url: String?, configured: String? = nil) async throws -> (any HostStore)? {
        let text = (url ?? ProcessInfo.processInfo.environment["NOVA_STORE"] ?? configured ?? "").trimmingCharacters(in: .whitespaces)
        if text.isEmpty || text == "sqlite" { return nil }
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") || text.hasPrefix("host=") {
            return try await PostgresStore.connect(url: text)
        }
        throw StoreOptionError(message: "unknown store '\(text.prefix(24))': use sqlite or a postgres:// URL")
    }
}

struct StoreOptionError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
