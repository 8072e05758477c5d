import Testing
@testable import CloudWasteStream

/// RFC 3339 parsing (strict, offset mandatory) and the UTC calendar helpers used by the windows.
@Suite struct TimestampTests {
    private func ts(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Timestamp {
        try #require(Timestamp.parseRFC3339(text), "\(text) should parse", sourceLocation: sourceLocation)
    }

    // MARK: - Parsing to the right instant

    @Test func parsesZuluToEpochSeconds() throws {
        #expect(try ts("1970-01-01T00:00:00Z").micros == 0)
        #expect(try ts("2000-01-01T00:00:00Z").seconds == 946_684_800)
        #expect(try ts("2024-02-29T00:00:00Z").seconds == 1_709_164_800)
        #expect(try ts("2026-11-29T00:00:00Z").seconds == 1_795_910_400)
        #expect(try ts("2026-03-31T15:00:00Z").seconds == 1_774_969_200)
    }

    @Test func plusFourteenHoursIsThePreviousUTCDay() throws {
        let t = try ts("2026-04-01T05:00:00+14:00")
        #expect(t == (try ts("2026-03-31T15:00:00Z")))
        #expect(t.seconds == 1_774_969_200)
        #expect(t.monthKey == "2026-03-01")
        #expect(t.description == "2026-03-31T15:00:00Z")
    }

    @Test func minusTwelveHoursIsTheNextUTCDay() throws {
        let t = try ts("2026-03-31T13:00:00-12:00")
        #expect(t == (try ts("2026-04-01T01:00:00Z")))
        #expect(t.monthKey == "2026-04-01")
    }

    @Test func offsetsWithMinutes() throws {
        #expect(try ts("2026-03-14T12:00:00+05:30") == (try ts("2026-03-14T06:30:00Z")))
        #expect(try ts("2026-03-14T12:00:00-03:45") == (try ts("2026-03-14T15:45:00Z")))
        #expect(try ts("2026-03-14T12:00:00+00:00") == (try ts("2026-03-14T12:00:00Z")))
        #expect(try ts("2026-03-14T12:00:00-00:00") == (try ts("2026-03-14T12:00:00Z")))
    }

    @Test func acceptsLowercaseSeparatorsAllowedByRFC3339() throws {
        #expect(try ts("2026-03-14t12:00:00z") == (try ts("2026-03-14T12:00:00Z")))
    }

    @Test func leapDays() throws {
        #expect(Timestamp.parseRFC3339("2024-02-29T12:00:00Z") != nil)
        #expect(Timestamp.parseRFC3339("2000-02-29T12:00:00Z") != nil)  // divisible by 400
        #expect(Timestamp.parseRFC3339("2025-02-29T12:00:00Z") == nil)
        #expect(Timestamp.parseRFC3339("2100-02-29T12:00:00Z") == nil)  // divisible by 100, not 400
        #expect(Timestamp.parseRFC3339("2024-02-30T12:00:00Z") == nil)
        let leap = try ts("2024-02-29T23:59:59Z")
        #expect(leap.civil.month == 2 && leap.civil.day == 29)
        #expect(leap.nextMonthStart == (try ts("2024-03-01T00:00:00Z")))
    }

    @Test(arguments: [
        "0000-00-00T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-06-00T00:00:00Z",
        "2026-03-31T24:00:00Z",
        "2026-03-31T23:60:00Z",
        "2026-03-31T23:59:60Z",
        "2026-03-31T23:59:59",            // no offset
        "2026-03-31T23:59:59.123",        // no offset after a fraction
        "2026-03-31",                     // date only
        "2026-03-31T23:59Z",              // no seconds
        "2026-03-31T23:59:59+0100",       // offset without colon
        "2026-03-31T23:59:59+01",         // short offset
        "2026-03-31T23:59:59+24:00",      // offset hour out of range
        "2026-03-31T23:59:59+01:60",      // offset minute out of range
        "2026-03-31T23:59:59Z ",          // trailing space
        " 2026-03-31T23:59:59Z",          // leading space
        "2026-03-31T23:59:59ZZ",
        "2026-03-31T23:59:59.Z",          // dot without digits
        "2026-03-31T23:59:59.1234567890Z",  // 10 fractional digits
        "2026-03-31X23:59:59Z",
        "2026/03/31T23:59:59Z",
        "26-03-31T23:59:59Z",
        "2026-3-31T23:59:59Z",
        "2026-03-31T23:59:59+01:00Z",
        "-026-03-31T23:59:59Z",
        "2026-03-31T23:59:59UTC",
        "1711929599",
        "",
    ])
    func rejectsInvalidTimestamps(_ text: String) {
        #expect(Timestamp.parseRFC3339(text) == nil, "\(text.debugDescription) should be rejected")
    }

    @Test func fractionalSecondsUpToNineDigits() throws {
        let base = try ts("2024-11-20T08:41:05Z")
        // Azure style: 7 digits and an offset.
        let azure = try ts("2024-11-20T09:41:05.5230000+01:00")
        #expect(azure.micros == base.micros + 523_000)
        #expect(try ts("2024-11-20T08:41:05.5Z").micros == base.micros + 500_000)
        #expect(try ts("2024-11-20T08:41:05.000001Z").micros == base.micros + 1)
        #expect(try ts("2024-11-20T08:41:05.1234567Z").micros == base.micros + 123_456)
        #expect(try ts("2024-11-20T08:41:05.12345678Z").micros == base.micros + 123_456)
        // Nanoseconds are truncated to microseconds.
        #expect(try ts("2024-11-20T08:41:05.123456789Z").micros == base.micros + 123_456)
        #expect(try ts("2024-11-20T08:41:05.999999999Z").micros == base.micros + 999_999)
    }

    // MARK: - Calendar helpers

    @Test func monthStartAndNextMonthStartAcrossDecember() throws {
        let t = try ts("2026-12-15T10:20:30.5Z")
        #expect(t.monthStart == (try ts("2026-12-01T00:00:00Z")))
        #expect(t.nextMonthStart == (try ts("2027-01-01T00:00:00Z")))
        #expect(t.monthKey == "2026-12-01")
        #expect(t.nextMonthStart.monthKey == "2027-01-01")

        let jan = try ts("2027-01-01T00:00:00Z")
        #expect(jan.monthStart == jan)
        #expect(jan.nextMonthStart == (try ts("2027-02-01T00:00:00Z")))
    }

    @Test func lastSecondOfTheMonthStaysInThatMonth() throws {
        let last = try ts("2026-03-31T23:59:59Z")
        #expect(last.monthKey == "2026-03-01")
        #expect(last.monthStart == (try ts("2026-03-01T00:00:00Z")))
        #expect(last.nextMonthStart == (try ts("2026-04-01T00:00:00Z")))
        let lastMicro = try ts("2026-03-31T23:59:59.999999Z")
        #expect(lastMicro.monthKey == "2026-03-01")
        #expect(lastMicro < lastMicro.nextMonthStart)
        #expect(Timestamp(micros: lastMicro.micros + 1).monthKey == "2026-04-01")
        #expect(try ts("2026-02-28T23:59:59Z").monthKey == "2026-02-01")
        #expect(try ts("2026-04-30T23:59:59Z").monthKey == "2026-04-01")
    }

    @Test(arguments: [
        ("2026-11-29T12:00:00Z", 7),  // Sunday
        ("2026-11-30T00:00:00Z", 1),  // Monday
        ("2026-11-28T23:59:59Z", 6),  // Saturday
        ("1970-01-01T00:00:00Z", 4),  // Thursday
        ("2024-02-29T00:00:00Z", 4),  // Thursday
        ("2000-01-01T00:00:00Z", 6),  // Saturday
        ("2026-03-16T00:00:00Z", 1),  // Monday
    ])
    func isoWeekday(_ text: String, _ weekday: Int) throws {
        #expect(try ts(text).isoWeekday == weekday)
    }

    @Test func isoWeekdayUsesUTCNotTheOffset() throws {
        // Monday 05:00 at +14:00 is still Sunday in UTC.
        #expect(try ts("2026-11-30T05:00:00+14:00").isoWeekday == 7)
    }

    @Test func beforeTheEpoch() {
        let t = Timestamp(micros: -1)
        #expect(t.seconds == -1)
        #expect(t.description == "1969-12-31T23:59:59.999999Z")
        #expect(t.isoWeekday == 3)  // Wednesday
        #expect(Timestamp(seconds: -86_400).description == "1969-12-31T00:00:00Z")
    }

    @Test func civilComponents() throws {
        let c = try ts("2026-07-04T09:08:07.000123+00:00").civil
        #expect(c.year == 2026 && c.month == 7 && c.day == 4)
        #expect(c.hour == 9 && c.minute == 8 && c.second == 7 && c.micro == 123)
    }

    // MARK: - Formatting

    @Test func postgresTextAndDescription() throws {
        let whole = try ts("2026-03-31T23:59:59Z")
        #expect(whole.postgresText == "2026-03-31 23:59:59+00")
        #expect(whole.description == "2026-03-31T23:59:59Z")

        let fraction = try ts("2026-03-31T23:59:59.123456Z")
        #expect(fraction.postgresText == "2026-03-31 23:59:59.123456+00")
        #expect(fraction.description == "2026-03-31T23:59:59.123456Z")

        let small = try ts("2026-01-02T03:04:05.000007Z")
        #expect(small.postgresText == "2026-01-02 03:04:05.000007+00")
        #expect(small.description == "2026-01-02T03:04:05.000007Z")

        // Offsets are converted to UTC when printed.
        #expect(try ts("2024-11-20T09:41:05.5230000+01:00").description == "2024-11-20T08:41:05.523000Z")
        #expect(try ts("2024-11-20T09:41:05.5230000+01:00").postgresText == "2024-11-20 08:41:05.523000+00")
    }

    @Test func descriptionRoundTrips() throws {
        for text in ["2026-03-31T23:59:59Z", "2000-01-01T00:00:00.000001Z", "2099-12-31T23:59:59.999999Z"] {
            let t = try ts(text)
            #expect(t.description == text)
            #expect(Timestamp.parseRFC3339(t.description) == t)
        }
    }

    @Test func ordering() throws {
        #expect(try ts("2026-04-01T05:00:00+14:00") < (try ts("2026-03-31T15:00:01Z")))
        #expect(!(try ts("2026-03-31T15:00:00Z") < (try ts("2026-04-01T05:00:00+14:00"))))
        #expect(Timestamp(seconds: 2).micros == 2_000_000)
    }
}
