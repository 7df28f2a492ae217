import Dispatch
import Foundation
import Episodes
import HostSupport

/// Index entries of durable episodes whose runs may already have been answered (a server's or
/// a worker's, `EpisodeLog.indexAfterAnswers()`).
///
/// The episode log is the source of truth and a run is answered once its episode is durable;
/// its index entry is added here and written with the entries of the runs answered in the next
/// `windowMs`, in one transaction on the store's serial queue. Every statement sequence of the
/// store (`SQLiteStore.onConnection`) first writes what is pending here, so a read that starts
/// after a run was answered — the runs list, a filter, the overview, a job's transition — finds
/// the run's entry, as it did when the answer waited for the index transaction. Another process
/// that opens the data directory repairs its index from the log on open (`EpisodeLog.open`);
/// one that has it open already sees the entry once it is written (within `windowMs`).
final class DeferredIndexEntries: @unchecked Sendable {
    /// More entries than this waiting: the committer that adds one waits for the queue (the
    /// index cannot keep up; better a slower log than unbounded memory).
    static let capacity = 16_384
    /// How long an entry may wait for others to share its transaction. Fewer, larger index
    /// transactions: eight B-trees per entry are written once per transaction, not once per run
    /// (session 21, alternated pairs on ext4 against an immediate write: 4 % more REST and 9 %
    /// more MCP calls/s; a 100 ms window measured no better than 20 ms).
    static let windowMs = 20
    private let lock = ConditionLock()
    private var pending: [EpisodeSummary] = []
    private var scheduled = false
    private var failures = 0
    private var lastFailure: String?

    /// Adds `summary` and, if no block that will take it is queued yet, queues one with
    /// `schedule` (under the lock: whoever adds next sees `scheduled` set only once it is).
    func add(_ summary: EpisodeSummary, schedule: () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        while pending.count >= Self.capacity { lock.wait() }
        pending.append(summary)
        if scheduled { return }
        scheduled = true
        schedule()
    }

    /// Takes every pending entry; the next `add` schedules a block again.
    func take() -> [EpisodeSummary] {
        lock.lock()
        defer { lock.unlock() }
        let batch = pending
        pending = []
        scheduled = false
        if batch.count >= Self.capacity { lock.broadcast() }
        return batch
    }

    /// Notes that writing `count` entries failed with `error`.
    func failed(count: Int, error: any Error) -> String {
        let message = "\(count) index entr\(count == 1 ? "y" : "ies") not written (the episodes are durable; "
            + "the index is repaired from the log on the next start or by `nova-host episodes recover`): \(error)"
        lock.withLock {
            failures += count
            lastFailure = message
        }
        return message
    }

    /// How many entries failed to be written since the store opened, and why the last did.
    var failureReport: (count: Int, last: String?) { lock.withLock { (failures, lastFailure) } }
}

extension SQLiteStore {
    /// Indexes `summary` after the caller is answered: returns at once (unless the index is
    /// `DeferredIndexEntries.capacity` entries behind), with a block that writes the entry
    /// queued ahead of any statement sequence this process starts afterwards, so its reads find
    /// it. A failure is reported on standard error and in `deferredIndexFailures`, and repaired
    /// by the next open or `nova-host episodes recover`.
    package func indexDeferred(_ summary: EpisodeSummary) {
        deferredIndex.add(summary) {
            queue.asyncAfter(deadline: .now() + .milliseconds(DeferredIndexEntries.windowMs)) { self.writeDeferredIndex() }
        }
    }

    /// Writes the pending index entries in one transaction, now: only on the store's queue.
    func writeDeferredIndex() {
        let batch = deferredIndex.take()
        if batch.isEmpty { return }
        do {
            try indexEpisodesOnQueue(batch)
        } catch {
            let message = deferredIndex.failed(count: batch.count, error: error)
            FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8))
        }
    }

    /// Entries whose deferred write failed since the store opened (0: none), and the last reason.
    public var deferredIndexFailures: (count: Int, last: String?) { deferredIndex.failureReport }
}
