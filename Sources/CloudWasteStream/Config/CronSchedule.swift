/// A five-field cron expression (minute hour day-of-month month day-of-week, UTC) for the built-in
/// export and retention schedules. Supports `*`, numbers, lists, ranges and `*/n` steps.
public struct CronSchedule: Sendable, Equatable {
    let minutes: Set<Int>, hours: Set<Int>, days: Set<Int>, months: Set<Int>, weekdays: Set<Int>
    let dayRestricted: Bool, weekdayRestricted: Bool

    public struct Invalid: Error, CustomStringConvertible { public var description: String }

    public init(_ text: String) throws(Invalid) {
        let fields = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5 else { throw Invalid(description: "needs 5 fields (minute hour day month weekday), got \(fields.count)") }
        minutes = try Self.field(fields[0], 0...59)
        hours = try Self.field(fields[1], 0...23)
        days = try Self.field(fields[2], 1...31)
        months = try Self.field(fields[3], 1...12)
        weekdays = Set(try Self.field(fields[4], 0...7).map { $0 % 7 })
        dayRestricted = fields[2] != "*"
        weekdayRestricted = fields[4] != "*"
    }

    static func field(_ text: String, _ range: ClosedRange<Int>) throws(Invalid) -> Set<Int> {
        var out = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            var step = 1
            var body = Substring(part)
            if let slash = part.firstIndex(of: "/") {
                guard let s = Int(part[part.index(after: slash)...]), s > 0 else { throw Invalid(description: "bad step in '\(text)'") }
                step = s
                body = part[..<slash]
            }
            var lo = range.lowerBound, hi = range.upperBound
            if body != "*" {
                let bounds = body.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
                guard (1...2).contains(bounds.count), bounds.allSatisfy({ $0 != nil }) else { throw Invalid(description: "bad field '\(text)'") }
                lo = bounds[0]!
                hi = bounds.count == 2 ? bounds[1]! : (step > 1 ? range.upperBound : lo)
            }
            guard range.contains(lo), range.contains(hi), lo <= hi else { throw Invalid(description: "'\(text)' is outside \(range)") }
            out.formUnion(stride(from: lo, through: hi, by: step))
        }
        return out
    }

    /// Whether the schedule fires in the UTC minute that contains `t`.
    public func matches(_ t: Timestamp) -> Bool {
        let c = t.civil
        let weekday = t.isoWeekday % 7  // Sunday = 0
        guard minutes.contains(c.minute), hours.contains(c.hour), months.contains(c.month) else { return false }
        switch (dayRestricted, weekdayRestricted) {
        case (true, true): return days.contains(c.day) || weekdays.contains(weekday)
        case (true, false): return days.contains(c.day)
        case (false, true): return weekdays.contains(weekday)
        case (false, false): return true
        }
    }

    /// The latest firing minute at or before `t` (searching back up to 366 days), for catch-up.
    public func previousFire(atOrBefore t: Timestamp) -> Timestamp? {
        var m = Timestamp(seconds: t.seconds - t.seconds % 60)
        for _ in 0..<(366 * 24 * 60) {
            if matches(m) { return m }
            m = Timestamp(seconds: m.seconds - 60)
        }
        return nil
    }
}
