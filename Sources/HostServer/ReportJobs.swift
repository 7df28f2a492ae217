import Foundation
import Host
import JSON
import Reports

/// Scheduled status reports (job kind `report`): each job builds one report, writes it to a
/// file and/or publishes it on a topic, then queues the next occurrence of its cron schedule.
/// The schedule is the chain of its jobs: cancel the pending one to stop it.
public struct ReportJobHandler: JobHandler {
    public static let kind = "report"
    let log: EpisodeLog
    let queue: any JobQueueStore
    let bus: BusService?

    public init(log: EpisodeLog, queue: any JobQueueStore, bus: BusService?) {
        self.log = log
        self.queue = queue
        self.bus = bus
    }

    /// The payload of a schedule; throws a message naming the bad option.
    public static func payload(name: String, cron: String, since: String, format: ReportFormat, agent: String?, output: String?, topic: String?) throws(ReportError) -> JSONValue {
        _ = try CronSchedule(cron)
        guard TemplateRef.isValidName(name) else { throw ReportError("the schedule's name must be lowercase letters, digits, '-' and '_'") }
        guard ReportWindow.milliseconds(since) != nil else { throw ReportError(ReportWindow.help) }
        guard output != nil || topic != nil else { throw ReportError("a scheduled report needs --output FILE, --topic NAME or both") }
        var o: [String: JSONValue] = ["name": .string(name), "cron": .string(cron), "since": .string(since), "format": .string(format.rawValue)]
        if let agent { o["agent"] = .string(agent) }
        if let output { o["output"] = .string(output) }
        if let topic { o["topic"] = .string(topic) }
        return .object(o)
    }

    /// The job of the schedule's next occurrence after `afterMs` (one per occurrence: its
    /// unique key is the schedule's name and time).
    public static func nextJob(_ payload: JSONValue, afterMs: Int64) throws(ReportError) -> JobSpec {
        let cron = try CronSchedule(payload["cron"]?.stringValue ?? "")
        guard let at = cron.next(after: afterMs) else { throw ReportError("the cron expression '\(cron)' never matches") }
        let name = payload["name"]?.stringValue ?? "report"
        return JobSpec(kind: kind, payload: payload, runAtMs: at, uniqueKey: "report:\(name):\(at)", maxAttempts: 3)
    }

    public func perform(_ job: Job, worker: String) async -> JobCompletion {
        let p = job.payload
        guard let format = ReportFormat(rawValue: p["format"]?.stringValue ?? "md") else { return .failed(error: "unknown format", retryable: false) }
        let report: StatusReport
        do { report = try await StatusReportBuilder(log: log).build(window: p["since"]?.stringValue ?? "24h", agent: p["agent"]?.stringValue) } catch {
            return .failed(error: "the report could not be built: \(error)", retryable: !(error is ReportError))
        }
        let text = StatusReportRenderer.render(report, as: format)
        var result: [String: JSONValue] = ["runs": .int(report.runsByStatus.values.reduce(0, +))]
        if let output = p["output"]?.stringValue {
            do {
                let dir = (output as NSString).deletingLastPathComponent
                if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
                try text.write(toFile: output, atomically: true, encoding: .utf8)
                result["written"] = .string(output)
            } catch { return .failed(error: "cannot write \(output): \(error)", retryable: true) }
        }
        if let topic = p["topic"]?.stringValue {
            guard let bus else { return .failed(error: "this worker has no message bus to publish on \(topic)", retryable: false) }
            let body: JSONValue = format == .json ? ((try? JSONValue.parse(text)) ?? .string(text)) : .string(text)
            do {
                let m = try await bus.publish(topic: topic, PublishRequest(payload: ["format": .string(format.rawValue), "report": body, "schedule": p["name"] ?? .null]),
                                              sender: "report:\(p["name"]?.stringValue ?? "")")
                result["published"] = .int(Int(m.seq))
            } catch { return .failed(error: "cannot publish on \(topic): \(error)", retryable: true) }
        }
        do {
            let next = try Self.nextJob(p, afterMs: max(Timestamps.wallNanos() / 1_000_000, job.runAtMs))
            _ = try await queue.enqueue(next)
            result["next_at"] = .string(Timestamps.format(nanosSinceEpoch: (next.runAtMs ?? 0) * 1_000_000))
        } catch let e as ReportError {
            result["next_at"] = .null
            result["note"] = .string(e.message)
        } catch {
            return .failed(error: "the next occurrence could not be queued: \(error)", retryable: true)
        }
        return .succeeded(result: .object(result))
    }

    public func requestCancel(_ job: Job) {}
}
