/// An instant as microseconds since the Unix epoch, UTC. Parsed from RFC 3339 without Foundation
/// (strict: calendar-valid dates, mandatory offset) and formatted for PostgreSQL.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var micros: Int64

    public init(micros: Int64) { self.micros = micros }
    public init(seconds: Int64) { self.micros = seconds * 1_000_000 }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.micros < b.micros }

    public var seconds: Int64 { micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000 }

    /// Parses a calendar day `YYYY-MM-DD` as its first instant in UTC. Returns nil for anything else.
    public static func parseDate(_ text: String) -> Timestamp? {
        var text = text
        return text.withUTF8 { parseDate(bytes: $0) }
    }

    static func parseDate(bytes b: UnsafeBufferPointer<UInt8>) -> Timestamp? {
        guard b.count == 10, b[4] == 45, b[7] == 45 else { return nil }
        func digits(_ from: Int, _ count: Int) -> Int? {
            var v = 0
            for i in from..<(from + count) {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2), (1...12).contains(month),
              day >= 1, day <= daysInMonth(year: year, month: month) else { return nil }
        return Timestamp(seconds: Int64(daysFromCivil(year: year, month: month, day: day)) * 86400)
    }

    /// Days since 1970-01-01 of this instant's UTC calendar day.
    public var unixDays: Int { Int(seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400) }

    /// `YYYY-MM-DD` of this instant's UTC day.
    public var dayKey: String {
        let c = civil
        return "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))"
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`. Returns nil for anything else.
    public static func parseRFC3339(_ text: String) -> Timestamp? {
        var text = text
        return text.withUTF8 { parseRFC3339(bytes: $0) }
    }

    static func parseRFC3339(bytes b: UnsafeBufferPointer<UInt8>) -> Timestamp? {
        guard b.count >= 20 else { return nil }
        func digits(_ from: Int, _ count: Int) -> Int? {
            var v = 0
            for i in from..<(from + count) {
                let c = b[i]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard let year = digits(0, 4), b[4] == 45, let month = digits(5, 2), b[7] == 45, let day = digits(8, 2),
              b[10] == 84 || b[10] == 116 || b[10] == 32,
              let hour = digits(11, 2), b[13] == 58, let minute = digits(14, 2), b[16] == 58, let second = digits(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
              hour <= 23, minute <= 59, second <= 59 else { return nil }
        var i = 19
        var fractionMicros = 0
        if b[i] == 46 {  // '.'
            i += 1
            var n = 0
            while i < b.count, b[i] >= 48 && b[i] <= 57 {
                if n < 6 { fractionMicros = fractionMicros * 10 + Int(b[i] - 48) }
                n += 1
                i += 1
            }
            guard n >= 1, n <= 9 else { return nil }
            if n < 6 { for _ in n..<6 { fractionMicros *= 10 } }
        }
        guard i < b.count else { return nil }
        var offsetSeconds = 0
        if b[i] == 90 || b[i] == 122 {  // Z z
            i += 1
        } else if b[i] == 43 || b[i] == 45 {  // + -
            guard i + 6 == b.count, let oh = digits(i + 1, 2), b[i + 3] == 58, let om = digits(i + 4, 2),
                  oh <= 23, om <= 59 else { return nil }
            offsetSeconds = (oh * 3600 + om * 60) * (b[i] == 45 ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let secs = Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        let t = Timestamp(micros: secs * 1_000_000 + Int64(fractionMicros))
        // An offset can push 0000-01-01 or 9999-12-31 outside four-digit years, which could not
        // be written back in RFC 3339 (found by the fuzzer).
        guard (Self.firstOfYear0...Self.lastOfYear9999).contains(t.micros) else { return nil }
        return t
    }

    static let firstOfYear0 = Int64(daysFromCivil(year: 0, month: 1, day: 1)) * 86_400_000_000
    static let lastOfYear9999 = Int64(daysFromCivil(year: 10_000, month: 1, day: 1)) * 86_400_000_000 - 1

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    public var civil: (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, micro: Int) {
        let s = seconds
        let days = Int(s >= 0 ? s / 86400 : (s - 86399) / 86400)
        let rem = Int(s - Int64(days) * 86400)
        let (y, m, d) = Self.civilFromDays(days)
        return (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60, Int(micros - s * 1_000_000))
    }

    /// ISO weekday, Monday = 1 … Sunday = 7.
    public var isoWeekday: Int {
        let w = (unixDays + 3) % 7  // 1970-01-01 was a Thursday (3 in Monday=0)
        return (w < 0 ? w + 7 : w) + 1
    }

    /// First instant of this instant's UTC calendar month.
    public var monthStart: Timestamp {
        let c = civil
        return Timestamp(seconds: Int64(Self.daysFromCivil(year: c.year, month: c.month, day: 1)) * 86400)
    }

    /// First instant of the next UTC calendar month.
    public var nextMonthStart: Timestamp {
        let c = civil
        let (y, m) = c.month == 12 ? (c.year + 1, 1) : (c.year, c.month + 1)
        return Timestamp(seconds: Int64(Self.daysFromCivil(year: y, month: m, day: 1)) * 86400)
    }

    /// `YYYY-MM-DD` of the month start, the `month` column of cost_trend_data.
    public var monthKey: String {
        let c = civil
        return "\(pad(c.year, 4))-\(pad(c.month, 2))-01"
    }

    /// `2026-03-31 23:59:59.123456+00`, a timestamptz literal.
    public var postgresText: String {
        let c = civil
        var s = "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2)) \(pad(c.hour, 2)):\(pad(c.minute, 2)):\(pad(c.second, 2))"
        if c.micro != 0 { s += "." + pad(c.micro, 6) }
        return s + "+00"
    }

    /// RFC 3339 in UTC with a `Z`.
    public var description: String {
        let c = civil
        var s = "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))T\(pad(c.hour, 2)):\(pad(c.minute, 2)):\(pad(c.second, 2))"
        if c.micro != 0 { s += "." + pad(c.micro, 6) }
        return s + "Z"
    }

    public static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(micros: Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000)
    }
}

@inline(__always) func pad(_ v: Int, _ width: Int) -> String {
    let s = String(v)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

#if canImport(Glibc)
import Glibc
#endif
