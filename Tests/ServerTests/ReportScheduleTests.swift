import Foundation
import Testing
import Host
import HostServer
import JSON
import Reports

/// Issue 16.5: scheduled reports (a cron expression; a job that writes the file or publishes
/// on a topic, then queues its next occurrence).
@Suite("Scheduled reports")
struct ReportScheduleTests {
    typealias F = ServerFixtures
    static func ms(_ text: String) -> Int64 { Timestamps.parseMs(text)! }

    @Test func cronExpressionsFindTheirNextMinute() throws {
        let at = Self.ms("2026-12-06T07:59:30Z")  // a Sunday
        #expect(try CronSchedule("0 8 * * *").next(after: at) == Self.ms("2026-12-06T08:00:00Z"))
        #expect(try CronSchedule("*/15 * * * *").next(after: at) == Self.ms("2026-12-06T08:00:00Z"))
        #expect(try CronSchedule("30 9 * * 1-5").next(after: at) == Self.ms("2026-12-07T09:30:00Z"), "Monday")
        #expect(try CronSchedule("0 0 1 * *").next(after: at) == Self.ms("2027-01-01T00:00:00Z"))
        #expect(try CronSchedule("0 12 13 * 5").next(after: at) == Self.ms("2026-12-11T12:00:00Z"), "a Friday comes before the 13th")
        #expect(try CronSchedule("59 23 31 12 *").next(after: at) == Self.ms("2026-12-31T23:59:00Z"))
        #expect(try CronSchedule("0 8 * * 7").next(after: Self.ms("2026-12-06T08:00:00Z")) == Self.ms("2026-12-13T08:00:00Z"), "strictly after, 7 is Sunday")
        #expect(try CronSchedule("0 0 30 2 *").next(after: at) == nil)
        for bad in ["* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *", "* * 0 * *", "1,,2 * * * *"] {
            #expect(throws: ReportError.self, "\(bad)") { try CronSchedule(bad) }
        }
    }

    @Test func aScheduledReportWritesPublishesAndQueuesItsNextOccurrence() async throws {
        let dir = F.tempDir("schedule")
        let log = try await EpisodeLog.open(dataDirectory: dir + "/data")
        let queue = try #require(log.store.jobQueue)
        let bus = BusService(bus: try #require(log.store.messageBus))
        _ = try await bus.createTopic(name: "reports.daily", schema: nil, maxAgeSeconds: nil, maxCount: nil, by: "admin")
        _ = try await bus.subscribe(Subscription(id: "watch", topic: "reports.daily", createdBy: "admin"), start: .earliest)
        let payload = try ReportJobHandler.payload(name: "daily", cron: "0 8 * * *", since: "24h", format: .md, agent: nil,
                                                   output: dir + "/out/daily.md", topic: "reports.daily")
        let noDestination: String? = nil
        #expect(throws: ReportError.self) { try ReportJobHandler.payload(name: "x", cron: "0 8 * * *", since: "24h", format: .md, agent: nil, output: noDestination, topic: noDestination) }
        #expect(try ReportJobHandler.nextJob(payload, afterMs: Self.ms("2026-12-06T07:00:00Z")).runAtMs == Self.ms("2026-12-06T08:00:00Z"))
        let first = try ReportJobHandler.nextJob(payload, afterMs: Timestamps.wallNanos() / 1_000_000)
        #expect(first.kind == "report" && first.uniqueKey == "report:daily:\(first.runAtMs ?? 0)")
        let enqueued = try await queue.enqueue(first)
        let handler = ReportJobHandler(log: log, queue: queue, bus: bus)
        let completion = await handler.perform(enqueued.job, worker: "test")
        guard case .succeeded(let result?, _) = completion else { Issue.record("\(completion)"); return }
        let text = try String(contentsOfFile: dir + "/out/daily.md", encoding: .utf8)
        #expect(text.contains("#") && result["written"]?.stringValue == dir + "/out/daily.md", "\(text.prefix(200))")
        let delivered = try await bus.receive(subscription: "watch", consumer: "t", max: 5, waitMs: 0, visibilityTimeoutMs: nil)
        #expect(delivered.count == 1 && delivered.first?.message.payload["schedule"] == "daily" && delivered.first?.message.payload["format"] == "md")
        // The next occurrence is queued once: the first 08:00 after this one (performed early here).
        let next = try await queue.listJobs(JobFilter(kind: "report"), limit: 10, offset: 0).filter { $0.id != enqueued.job.id }
        #expect(next.count == 1, "\(next.map(\.runAtMs))")
        #expect(next.first?.runAtMs == (first.runAtMs ?? 0) + 86_400_000)
    }
}
