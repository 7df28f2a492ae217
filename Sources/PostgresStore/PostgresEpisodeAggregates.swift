import Episodes
import JSON
import PostgresNIO
import Store

// Aggregates over the shared episode index in SQL (`EpisodeAggregating`), the same questions
// `SQLiteEpisodeAggregates.swift` answers for one machine.

extension PostgresStore: EpisodeAggregating {
    /// Schema 9: end times in milliseconds and whether denials are indexed (`facts`), and the
    /// refused calls of every run.
    static let episodeFactsMigration: [PostgresQuery] = [
        "ALTER TABLE nova_episodes ADD COLUMN finished_ms BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE nova_episodes ADD COLUMN facts SMALLINT NOT NULL DEFAULT 0",
        "CREATE INDEX nova_episodes_by_finished ON nova_episodes(finished_ms, status, principal, calls, tokens, cost_micros)",
        "CREATE INDEX nova_episodes_by_principal_finished ON nova_episodes(principal, finished_ms, status, calls, tokens, cost_micros)",
        "CREATE INDEX nova_episodes_lacking_facts ON nova_episodes(seq) WHERE facts = 0",
        """
        CREATE TABLE nova_episode_denials (
            run_id      TEXT NOT NULL,
            principal   TEXT NOT NULL,
            rule        TEXT NOT NULL,
            tool        TEXT NOT NULL,
            finished_ms BIGINT NOT NULL
        )
        """,
        "CREATE INDEX nova_episode_denials_by_finished ON nova_episode_denials(finished_ms)",
        "CREATE INDEX nova_episode_denials_by_run ON nova_episode_denials(run_id)",
    ]

    public func aggregateEpisodes(_ q: EpisodeAggregateQuery) async throws -> EpisodeAggregates {
        let since = q.sinceMs, until = q.untilMs, principal = q.principal
        var byStatus: [String: Int] = [:]
        for try await (status, n) in try await client.query("""
            SELECT status, count(*)::BIGINT FROM nova_episodes
            WHERE finished_ms >= \(since) AND finished_ms < \(until) AND (\(principal)::TEXT IS NULL OR principal = \(principal))
            GROUP BY status
            """, logger: logger).decode((String, Int).self) { byStatus[status, default: 0] += n }

        var buckets = Array(repeating: EpisodeBucket(), count: q.bucketCount)
        for try await (b, runs, ok) in try await client.query("""
            SELECT (finished_ms - \(since)) / \(q.bucketMs), count(*)::BIGINT, (count(*) FILTER (WHERE status = 'succeeded'))::BIGINT
            FROM nova_episodes
            WHERE finished_ms >= \(since) AND finished_ms < \(until) AND (\(principal)::TEXT IS NULL OR principal = \(principal))
            GROUP BY 1
            """, logger: logger).decode((Int64, Int, Int).self) {
            let i = Int(min(Int64(q.bucketCount - 1), max(0, b)))
            buckets[i].runs += runs
            buckets[i].succeeded += ok
        }

        var consumption: [EpisodeConsumption] = []
        for try await (p, runs, calls, tokens, cost) in try await client.query("""
            SELECT principal, count(*)::BIGINT, sum(calls)::BIGINT, sum(tokens)::BIGINT, sum(cost_micros)::BIGINT FROM nova_episodes
            WHERE finished_ms >= \(since) AND finished_ms < \(until) AND (\(principal)::TEXT IS NULL OR principal = \(principal))
            GROUP BY principal ORDER BY principal
            """, logger: logger).decode((String, Int, Int, Int, Int).self) {
            consumption.append(EpisodeConsumption(principal: p, runs: runs, totals: EpisodeTotals(calls: calls, tokens: tokens, costMicros: cost)))
        }

        var rules: [(String, Int, String)] = []
        for try await row in try await client.query("""
            SELECT rule, count(*)::BIGINT, string_agg(DISTINCT tool, ',') FROM nova_episode_denials
            WHERE finished_ms >= \(since) AND finished_ms < \(until) AND (\(principal)::TEXT IS NULL OR principal = \(principal))
            GROUP BY rule ORDER BY count(*) DESC, rule LIMIT \(q.maxRules)
            """, logger: logger).decode((String, Int, String).self) { rules.append(row) }
        var denials: [EpisodeDenialCount] = []
        for (rule, count, tools) in rules {
            var examples: [String] = []
            for try await (run, _) in try await client.query("""
                SELECT run_id, max(finished_ms) FROM nova_episode_denials
                WHERE rule = \(rule) AND finished_ms >= \(since) AND finished_ms < \(until)
                  AND (\(principal)::TEXT IS NULL OR principal = \(principal))
                GROUP BY run_id ORDER BY 2 DESC, run_id LIMIT 3
                """, logger: logger).decode((String, Int64).self) { examples.append(run) }
            denials.append(EpisodeDenialCount(rule: rule, count: count, tools: tools.split(separator: ",").map(String.init).sorted(),
                                              exampleRuns: examples))
        }
        return EpisodeAggregates(byStatus: byStatus, buckets: buckets, denials: denials, consumption: consumption)
    }

    public func runIdsLackingIndexFacts(limit: Int) async throws -> [String] {
        var out: [String] = []
        for try await (id) in try await client.query(
            "SELECT run_id FROM nova_episodes WHERE facts = 0 ORDER BY seq LIMIT \(max(0, limit))", logger: logger).decode(String.self)
        {
            out.append(id)
        }
        return out
    }

    public func policyStateEntries(prefix: String) async throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for try await (key, text) in try await client.query("""
            SELECT key, value FROM nova_policy_state WHERE left(key, length(\(prefix))) = \(prefix)
            """, logger: logger).decode((String, String).self) {
            if let value = try? JSONValue.parse(text) { out[key] = value }
        }
        return out
    }
}
