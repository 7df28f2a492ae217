import Foundation

/// A five-field cron expression (`minute hour day-of-month month day-of-week`, UTC): `*`,
/// numbers, lists `1,15`, ranges `1-5`, steps `*/15` and `10-50/20`. Day of week 0–7 (0 and 7
/// are Sunday). As in Vixie cron, when both day fields are restricted a day matches either.
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    let minutes: Set<Int>, hours: Set<Int>, days: Set<Int>, months: Set<Int>, weekdays: Set<Int>
    let dayRestricted: Bool, weekdayRestricted: Bool
    public let description: String

    /// Parses `text`; the error names the field and what is wrong.
    public init(_ text: String) throws(ReportError) {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else { throw ReportError("a cron expression has 5 fields (minute hour day month weekday), got \(fields.count): '\(text)'") }
        minutes = try Self.field(fields[0], "minute", 0...59)
        hours = try Self.field(fields[1], "hour", 0...23)
        days = try Self.field(fields[2], "day of month", 1...31)
        months = try Self.field(fields[3], "month", 1...12)
        weekdays = Set(try Self.field(fields[4], "day of week", 0...7).map { $0 % 7 })
        dayRestricted = fields[2] != "*"
        weekdayRestricted = fields[4] != "*"
        description = fields.joined(separator: " ")
    }

    static func field(_ text: String, _ name: String, _ range: ClosedRange<Int>) throws(ReportError) -> Set<Int> {
        var out = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw ReportError("cron \(name): '\(part)' has more than one /") }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0 else { throw ReportError("cron \(name): the step in '\(part)' must be a positive number") }
                step = s
            }
            let base = pieces[0]
            var lo = range.lowerBound, hi = range.upperBound
            if base != "*" {
                let ends = base.split(separator: "-", omittingEmptySubsequences: false)
                guard ends.count <= 2, let a = Int(ends[0]), let b = ends.count == 2 ? Int(ends[1]) : (pieces.count == 2 ? range.upperBound : Int(ends[0])),
                      range.contains(a), range.contains(b), a <= b else {
                    throw ReportError("cron \(name): '\(part)' is not a number, range or step within \(range.lowerBound)-\(range.upperBound)")
                }
                (lo, hi) = (a, b)
            }
            out.formUnion(stride(from: lo, through: hi, by: step))
        }
        return out
    }

    /// The first minute strictly after `ms` (milliseconds since the epoch, UTC) that matches, or
    /// nil when none does within five years (`0 0 30 2 *` never matches).
    public func next(after ms: Int64) -> Int64? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var t = (ms / 60_000 + 1) * 60_000
        let limit = ms + 5 * 366 * 86_400_000
        while t <= limit {
            let c = calendar.dateComponents([.minute, .hour, .day, .month, .weekday], from: Date(timeIntervalSince1970: Double(t) / 1000))
            let (minute, hour, day, month, weekday) = (c.minute!, c.hour!, c.day!, c.month!, c.weekday! - 1)
            guard months.contains(month) else { t = nextDay(t, calendar); continue }
            let dayOK: Bool = switch (dayRestricted, weekdayRestricted) {
            case (true, true): days.contains(day) || weekdays.contains(weekday)
            case (true, false): days.contains(day)
            case (false, true): weekdays.contains(weekday)
            case (false, false): true
            }
            guard dayOK else { t = nextDay(t, calendar); continue }
            guard hours.contains(hour) else { t = (t / 3_600_000 + 1) * 3_600_000; continue }
            if minutes.contains(minute) { return t }
            t += 60_000
        }
        return nil
    }

    private func nextDay(_ t: Int64, _ calendar: Calendar) -> Int64 { (t / 86_400_000 + 1) * 86_400_000 }
}
