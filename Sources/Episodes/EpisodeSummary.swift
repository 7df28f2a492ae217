import HostSupport
import JSON

/// A call a run's policy refused (or held for an approval that was not given), as indexed:
/// the overview counts denials by rule from these without reading episodes.
public struct EpisodeDenial: Sendable, Hashable {
    /// The deciding rule, rate limit or budget id (`default-deny` when no rule matched).
    public var rule: String
    /// The tool called.
    public var tool: String

    public init(rule: String, tool: String) {
        self.rule = rule
        self.tool = tool
    }

    /// The refused attempts of an episode document, foreach elements and sub-runs included.
    public static func all(in document: JSONValue) -> [EpisodeDenial] {
        EpisodeAttempts.all(in: document).compactMap { recorded in
            guard let d = recorded.attempt["decision"], let outcome = d["decision"]?.stringValue, outcome != "allow" else { return nil }
            return EpisodeDenial(rule: d["rule"]?.stringValue ?? "?", tool: recorded.tool)
        }
    }
}

/// Totals of one run, as indexed.
public struct EpisodeTotals: Sendable, Hashable {
    /// Tool calls made (allowed attempts).
    public var calls: Int
    /// Tokens the drivers reported.
    public var tokens: Int
    /// Cost in millionths of a cost unit.
    public var costMicros: Int

    /// Totals of `calls`, `tokens` and `costMicros`.
    public init(calls: Int = 0, tokens: Int = 0, costMicros: Int = 0) {
        self.calls = calls
        self.tokens = tokens
        self.costMicros = costMicros
    }
}

/// What the index keeps about one episode, for fast listing and filtering. The episode file
/// stays the source of truth; the index can be rebuilt from the files at any time.
public struct EpisodeSummary: Sendable, Hashable {
    /// The run id.
    public var runId: String
    /// Chain position.
    public var seq: Int
    /// The episode's hash.
    public var hash: String
    /// The plan's name.
    public var planName: String
    /// Who ran it.
    public var principal: String
    /// `succeeded`, `failed`, `denied`, `cancelled`, … (`RunStatus` raw values).
    public var status: String
    /// RFC 3339 start time.
    public var startedAt: String
    /// RFC 3339 end time.
    public var finishedAt: String
    /// Wall time of the run.
    public var durationMs: Double
    /// Calls, tokens and cost.
    public var totals: EpisodeTotals
    /// The calls policy refused. Indexed with the summary; a summary read back from the index
    /// leaves it empty (the aggregates query them where they are stored).
    public var denials: [EpisodeDenial]

    /// When the run ended (its start when it has no end), in milliseconds since the epoch; 0 when
    /// neither parses. The overview's time axis.
    public var finishedMs: Int64 {
        Timestamps.parseMs(finishedAt.isEmpty ? startedAt : finishedAt) ?? 0
    }

    /// A summary with every field given.
    public init(runId: String, seq: Int, hash: String, planName: String, principal: String, status: String,
                startedAt: String, finishedAt: String, durationMs: Double, totals: EpisodeTotals, denials: [EpisodeDenial] = [])
    {
        self.denials = denials
        self.runId = runId
        self.seq = seq
        self.hash = hash
        self.planName = planName
        self.principal = principal
        self.status = status
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.durationMs = durationMs
        self.totals = totals
    }

    /// The summary of a stored episode document (fields a `RunRecord` body carries; absent
    /// ones are empty or zero).
    public init(ref: EpisodeRef, document: JSONValue) {
        func str(_ k: String) -> String { document[k]?.stringValue ?? "" }
        let t = document["totals"]
        self.init(runId: ref.runId, seq: ref.seq, hash: ref.hash, planName: str("plan_name"), principal: str("principal"),
                  status: str("status"), startedAt: str("started_at"), finishedAt: str("finished_at"),
                  durationMs: document["duration_ms"]?.doubleValue ?? 0,
                  totals: EpisodeTotals(calls: t?["calls"]?.intValue ?? 0, tokens: t?["tokens"]?.intValue ?? 0,
                                        costMicros: t?["cost_micros"]?.intValue ?? 0),
                denials: EpisodeDenial.all(in: document))
    }

    /// The summary of `episode`.
    public init(_ episode: Episode) {
        self.init(ref: episode.ref, document: episode.document)
    }

    /// JSON form for `--json` output.
    public var json: JSONValue {
        [
            "run_id": .string(runId), "seq": .int(seq), "hash": .string(hash), "plan_name": .string(planName),
            "principal": .string(principal), "status": .string(status), "started_at": .string(startedAt),
            "finished_at": .string(finishedAt), "duration_ms": .double(durationMs),
            "totals": ["calls": .int(totals.calls), "tokens": .int(totals.tokens), "cost_micros": .int(totals.costMicros)],
        ]
    }
}
