import Episodes
import Store

// A run's record is what its episode holds: written through the episode log and indexed from
// the typed record, without a JSON round trip.

extension EpisodeSummary {
    /// The summary of a run written as the episode `ref`, from the typed record (no JSON
    /// round trip).
    public init(ref: EpisodeRef, record: RunRecord) {
        let t = record.totals
        self.init(runId: ref.runId, seq: ref.seq, hash: ref.hash, planName: record.planName, principal: record.principal,
                  status: record.status.rawValue, startedAt: record.startedAt, finishedAt: record.finishedAt,
                  durationMs: record.durationMs,
                  totals: EpisodeTotals(calls: t.calls, tokens: Int(clamping: t.tokens), costMicros: Int(clamping: t.costMicros)),
                  denials: Self.denials(of: record.steps))
    }

    /// The refused attempts of `steps`, their `foreach` elements and sub-runs (as
    /// `EpisodeDenial.all(in:)` finds them in the JSON document).
    static func denials(of steps: [StepRecord]) -> [EpisodeDenial] {
        steps.flatMap { step -> [EpisodeDenial] in
            step.attempts.compactMap { a in
                guard let d = a.decision, !d.allowed else { return nil }
                return EpisodeDenial(rule: d.ruleId, tool: step.call)
            } + denials(of: step.items ?? []) + denials(of: step.subrun?.record.steps ?? [])
        }
    }
}

extension EpisodeLog {
    /// Writes the episode of `record` (its `json`, which the run engine has already redacted;
    /// encoded from the record without building the `JSONValue`) and indexes it from the typed
    /// record. The blocking file work runs on its own thread, unless the run is `alone` (no
    /// other run in flight: see `EpisodeSegmentLog.asyncWritersMayLead`).
    @discardableResult
    public func write(_ record: RunRecord, alone: Bool = false) async throws -> LoggedEpisode {
        try await write(members: { record.episodeMembers }, body: { record.json }, runId: record.runId, alone: alone) {
            EpisodeSummary(ref: $0, record: record)
        }
    }
}
