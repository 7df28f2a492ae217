import Episodes
import JSON

// Aggregates over the episode index in SQL (`EpisodeAggregating`): the dashboard's overview
// counts 10,000 runs in milliseconds instead of reading their episodes.

extension SQLiteStore: EpisodeAggregating {
    /// Schema 8: each index entry's end time in milliseconds (`finished_ms`) and whether its
    /// denials are indexed (`facts`: entries written before are 0 until `backfillIndexFacts`
    /// reads their episodes); the refused calls of every run in `episode_denials`. The time
    /// indexes cover the aggregated columns, so the overview reads no table rows.
    static let episodeFactsMigration = """
        ALTER TABLE episodes ADD COLUMN finished_ms INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE episodes ADD COLUMN facts INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX episodes_by_finished ON episodes(finished_ms, status, principal, calls, tokens, cost_micros);
        CREATE INDEX episodes_by_principal_finished ON episodes(principal, finished_ms, status, calls, tokens, cost_micros);
        CREATE INDEX episodes_lacking_facts ON episodes(seq) WHERE facts = 0;
        CREATE TABLE episode_denials (
            run_id      TEXT NOT NULL,
            principal   TEXT NOT NULL,
            rule        TEXT NOT NULL,
            tool        TEXT NOT NULL,
            finished_ms INTEGER NOT NULL
        );
        CREATE INDEX episode_denials_by_finished ON episode_denials(finished_ms);
        CREATE INDEX episode_denials_by_run ON episode_denials(run_id);
        """

    public func aggregateEpisodes(_ q: EpisodeAggregateQuery) async throws -> EpisodeAggregates {
        var window = "finished_ms >= ? AND finished_ms < ?"
        var params: [SQLValue] = [.int(q.sinceMs), .int(q.untilMs)]
        if let principal = q.principal {
            window += " AND principal = ?"
            params.append(.text(principal))
        }
        let filter = window, bound = params
        return try await onConnection { [self] in
            var byStatus: [String: Int] = [:]
            for row in try conn.query("SELECT status, count(*) FROM episodes WHERE \(filter) GROUP BY status", bound) {
                byStatus[row[0].text ?? "", default: 0] += row[1].int ?? 0
            }
            var buckets = Array(repeating: EpisodeBucket(), count: q.bucketCount)
            let bucketSQL = "SELECT (finished_ms - ?) / ?, count(*), sum(status = 'succeeded') FROM episodes WHERE \(filter) GROUP BY 1"
            for row in try conn.query(bucketSQL, [.int(q.sinceMs), .int(q.bucketMs)] + bound) {
                let i = Int(min(Int64(q.bucketCount - 1), max(0, Int64(row[0].int ?? 0))))
                buckets[i].runs += row[1].int ?? 0
                buckets[i].succeeded += row[2].int ?? 0
            }
            var consumption: [EpisodeConsumption] = []
            let consumedSQL = """
                SELECT principal, count(*), sum(calls), sum(tokens), sum(cost_micros) FROM episodes WHERE \(filter)
                GROUP BY principal ORDER BY principal
                """
            for row in try conn.query(consumedSQL, bound) {
                consumption.append(EpisodeConsumption(
                    principal: row[0].text ?? "", runs: row[1].int ?? 0,
                    totals: EpisodeTotals(calls: row[2].int ?? 0, tokens: row[3].int ?? 0, costMicros: row[4].int ?? 0)))
            }
            var denials: [EpisodeDenialCount] = []
            let rulesSQL = """
                SELECT rule, count(*), group_concat(DISTINCT tool) FROM episode_denials WHERE \(filter)
                GROUP BY rule ORDER BY count(*) DESC, rule LIMIT ?
                """
            for row in try conn.query(rulesSQL, bound + [.int(Int64(q.maxRules))]) {
                let rule = row[0].text ?? ""
                let examples = try conn.query("""
                    SELECT run_id, max(finished_ms) FROM episode_denials WHERE rule = ? AND \(filter)
                    GROUP BY run_id ORDER BY 2 DESC, run_id LIMIT 3
                    """, [.text(rule)] + bound).compactMap { $0[0].text }
                let tools = (row[2].text ?? "").split(separator: ",").map(String.init).sorted()
                denials.append(EpisodeDenialCount(rule: rule, count: row[1].int ?? 0, tools: tools, exampleRuns: examples))
            }
            return EpisodeAggregates(byStatus: byStatus, buckets: buckets, denials: denials, consumption: consumption)
        }
    }

    public func runIdsLackingIndexFacts(limit: Int) async throws -> [String] {
        try await onConnection { [self] in
            try conn.query("SELECT run_id FROM episodes WHERE facts = 0 ORDER BY seq LIMIT ?", [.int(Int64(max(0, limit)))]).compactMap { $0[0].text }
        }
    }

    public func policyStateEntries(prefix: String) async throws -> [String: JSONValue] {
        try await onConnection { [self] in
            var out: [String: JSONValue] = [:]
            for row in try conn.query("SELECT key, value FROM policy_state WHERE substr(key, 1, length(?1)) = ?1", [.text(prefix)]) {
                if let key = row[0].text, let text = row[1].text, let value = try? JSONValue.parse(text) { out[key] = value }
            }
            return out
        }
    }
}
