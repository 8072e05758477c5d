/// Typed, validated access to the root object's fields of a parsed record, read from the tape and
/// the message's bytes (borrowed for the decode call). A string becomes a `String` only when its
/// value is kept (short repeated ones come from the interner); a value that is checked and dropped
/// is validated in place.
struct FieldReader {
    let tape: JSONTape
    let bytes: UnsafeBufferPointer<UInt8>
    let limits: RecordDecoder.Limits
    /// The first instant of `limits.earliestYear`: earlier times are refused (compared as numbers,
    /// not as calendar dates).
    let earliest: Int64
    /// The decoder's clock, read only for a timestamp beyond the skew of its last reading.
    let clock: CachedClock
    /// Given: ids are kept as their pseudonyms (`keep`), hashed from the message's bytes.
    let pseudonymizer: Pseudonymizer?
    /// Given: arrays are refilled from there (metric summaries, tag keys).
    let arrays: RecycledArrays?

    init(tape: JSONTape, bytes: UnsafeBufferPointer<UInt8>, limits: RecordDecoder.Limits, earliest: Int64, clock: CachedClock,
         pseudonymizer: Pseudonymizer?, arrays: RecycledArrays? = nil) {
        self.tape = tape
        self.bytes = bytes
        self.limits = limits
        self.earliest = earliest
        self.clock = clock
        self.pseudonymizer = pseudonymizer
        self.arrays = arrays
    }

    /// The entry of a member's value, nil when it is absent or null.
    private func present(_ name: StaticString, in object: Int = 0) -> Int? {
        let found = object == 0 ? tape.rootMember(name, in: bytes, hint: &tape.lookup.next) : tape.member(name, of: object, in: bytes)
        guard let v = found, tape[v].kind != .null else { return nil }
        return v
    }

    /// `interned`: a value that many records repeat (a type, a region, a unit), shared among them.
    func string(_ name: StaticString, maxLength: Int, interned: Bool = false) throws(RecordRejection) -> String {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        return try stringValue(v, name, maxLength: maxLength, minLength: 1, interned: interned)
    }

    /// A string field that is checked and not kept (e.g. `resource_name`): validated in place.
    func skippedString(_ name: StaticString, maxLength: Int, minLength: Int) throws(RecordRejection) {
        guard let v = present(name) else { return }
        guard tape[v].kind == .string else { throw RecordRejection(.wrongType, field: name) }
        guard let raw = tape.rawBytes(v, in: bytes) else {
            _ = try stringValue(v, name, maxLength: maxLength, minLength: minLength)
            return
        }
        try checkLength(raw, name, maxLength: maxLength, minLength: minLength)
    }

    /// Scalars in valid UTF-8: the bytes that are not continuation bytes.
    static func scalarCount(_ utf8: UnsafeBufferPointer<UInt8>) -> Int {
        utf8.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
    }

    private func stringValue(_ v: Int, _ name: StaticString, maxLength: Int, minLength: Int, interned: Bool = false) throws(RecordRejection) -> String {
        guard tape[v].kind == .string else { throw RecordRejection(.wrongType, field: name) }
        if let raw = tape.rawBytes(v, in: bytes) {
            try checkLength(raw, name, maxLength: maxLength, minLength: minLength)
            return interned ? tape.strings.string(raw) : String(decoding: raw, as: UTF8.self)
        }
        let s = tape.string(v, in: bytes)
        let count = s.utf8.count
        // Scalars never outnumber UTF-8 bytes, so counting scalars is needed only for long strings.
        guard count <= maxLength * 4, count <= maxLength || s.unicodeScalars.count <= maxLength, count >= minLength else {
            throw RecordRejection(.invalidValue, field: name)
        }
        if s.utf8.contains(0) { throw RecordRejection(.invalidValue, field: name) }
        return s
    }

    /// The length rules of an unescaped string, on its bytes: no NUL can be there (raw control
    /// characters are malformed JSON), and ASCII counts its characters by its bytes.
    private func checkLength(_ raw: UnsafeBufferPointer<UInt8>, _ name: StaticString, maxLength: Int, minLength: Int) throws(RecordRejection) {
        guard raw.count <= maxLength * 4, raw.count >= minLength,
              raw.count <= maxLength || Self.scalarCount(raw) <= maxLength else {
            throw RecordRejection(.invalidValue, field: name)
        }
    }

    /// A validated id that is not kept yet (`keep`): its bytes in the message, or its text when
    /// it had escapes. Valid for the decode call only.
    enum IdentifierField {
        case bytes(UnsafeBufferPointer<UInt8>)
        case text(String)
    }

    /// An id: non-empty after trimming white space.
    func identifier(_ name: StaticString, maxLength: Int = 256) throws(RecordRejection) -> IdentifierField {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        return try identifierValue(v, name, maxLength: maxLength, nonBlank: true)
    }

    /// An optional reference to an id (e.g. `parent_resource_id`): non-empty.
    func optionalIdentifier(_ name: StaticString, maxLength: Int) throws(RecordRejection) -> IdentifierField? {
        guard let v = present(name) else { return nil }
        return try identifierValue(v, name, maxLength: maxLength, nonBlank: false)
    }

    private func identifierValue(_ v: Int, _ name: StaticString, maxLength: Int, nonBlank: Bool) throws(RecordRejection) -> IdentifierField {
        func checkNotBlank(_ text: String) throws(RecordRejection) {
            guard !nonBlank || text.unicodeScalars.contains(where: { !$0.properties.isWhitespace }) else {
                throw RecordRejection(.invalidValue, field: name)
            }
        }
        guard tape[v].kind == .string, let raw = tape.rawBytes(v, in: bytes) else {
            let text = try stringValue(v, name, maxLength: maxLength, minLength: 1)
            try checkNotBlank(text)
            return .text(text)
        }
        try checkLength(raw, name, maxLength: maxLength, minLength: 1)
        // Fast path: it starts with visible ASCII, so it is not blank.
        if !(raw[0] > 0x20 && raw[0] < 0x7F) { try checkNotBlank(String(decoding: raw, as: UTF8.self)) }
        return .bytes(raw)
    }

    /// The id as the record keeps it: its pseudonym in `domain` when decoding with a
    /// pseudonymizer, else its text.
    func keep(_ field: IdentifierField, _ domain: Pseudonymizer.Domain, provider: Provider? = nil) -> Identifier {
        switch field {
        case .bytes(let raw):
            if let pseudonymizer { return .pseudonym(pseudonymizer.pseudonym(domain, bytes: raw, provider: provider)) }
            return .text(String(decoding: raw, as: UTF8.self))
        case .text(let text):
            if let pseudonymizer { return .pseudonym(pseudonymizer.pseudonym(domain, text, provider: provider)) }
            return .text(text)
        }
    }

    /// `^[A-Za-z0-9_./-]{1,64}$`
    func token(_ name: StaticString) throws(RecordRejection) -> String {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        return try tokenValue(v, name, maxLength: 64)
    }

    func optionalToken(_ name: StaticString) throws(RecordRejection) -> String? {
        guard let v = present(name) else { return nil }
        return try tokenValue(v, name, maxLength: 64)
    }

    /// A token checked on its bytes where it stands (a token is ASCII, so its length in bytes is
    /// its length), and only then made a String; an escaped one is checked as its text.
    private func tokenValue(_ v: Int, _ name: StaticString, maxLength: Int, extra: UInt8? = nil) throws(RecordRejection) -> String {
        guard tape[v].kind == .string else { throw RecordRejection(.wrongType, field: name) }
        if let raw = tape.rawBytes(v, in: bytes) {
            guard Self.isToken(raw, maxLength: maxLength, extra: extra) else { throw RecordRejection(.invalidValue, field: name) }
            return tape.strings.string(raw)
        }
        let s = try stringValue(v, name, maxLength: maxLength, minLength: 1, interned: true)
        guard Self.isToken(s, maxLength: maxLength, extra: extra) else { throw RecordRejection(.invalidValue, field: name) }
        return s
    }

    static func isToken(_ s: String, maxLength: Int, extra: UInt8? = nil) -> Bool {
        var s = s
        return s.withUTF8 { isToken($0, maxLength: maxLength, extra: extra) }
    }

    static func isToken(_ u: UnsafeBufferPointer<UInt8>, maxLength: Int, extra: UInt8? = nil) -> Bool {
        guard !u.isEmpty, u.count <= maxLength else { return false }
        for c in u {
            guard (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
                || c == 95 || c == 46 || c == 47 || c == 45 || c == extra else { return false }
        }
        return true
    }

    func optionalUnit(_ name: StaticString) throws(RecordRejection) -> String? {
        guard let v = present(name) else { return nil }
        return try tokenValue(v, name, maxLength: 32, extra: UInt8(ascii: "%"))
    }

    func optionalEnumeration<T: StringCases>(_ name: StaticString, as type: T.Type) throws(RecordRejection) -> T? {
        guard present(name) != nil else { return nil }
        return try enumeration(name, as: type)
    }

    /// One of `T`'s cases, matched on the value's bytes (no String is made).
    func enumeration<T: StringCases>(_ name: StaticString, as type: T.Type) throws(RecordRejection) -> T {
        guard let i = try allowedIndex(name, T.allowed) else { throw RecordRejection(.invalidValue, field: name) }
        return T.allCases[i]
    }

    func provider() throws(RecordRejection) -> Provider {
        guard let i = try allowedIndex("provider", Provider.allowed) else { throw RecordRejection(.unknownProvider, field: "provider") }
        return Provider.allCases[i]
    }

    /// Which of `allowed` a required string field holds (nil: none of them), matched on its bytes;
    /// an escaped value, or one not in the set, first takes the checks every string takes.
    private func allowedIndex(_ name: StaticString, _ allowed: AllowedStrings) throws(RecordRejection) -> Int? {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        guard tape[v].kind == .string else { throw RecordRejection(.wrongType, field: name) }
        if let raw = tape.rawBytes(v, in: bytes), let i = allowed.index(raw) { return i }
        return allowed.index(try stringValue(v, name, maxLength: 64, minLength: 1))
    }

    /// A calendar day `YYYY-MM-DD` (UTC), from the year 2000 on and not after tomorrow.
    func date(_ name: StaticString) throws(RecordRejection) -> Timestamp {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        guard tape[v].kind == .string else { throw RecordRejection(.wrongType, field: name) }
        return try instant(withStringBytes(v, Timestamp.parseDate(bytes:)), name)
    }

    /// A parsed time within the limits: from `earliest` on (else invalid) and not further ahead of
    /// `now` than the allowed skew (else future).
    private func instant(_ parsed: Timestamp?, _ name: StaticString) throws(RecordRejection) -> Timestamp {
        guard let t = parsed, t.micros >= earliest else { throw RecordRejection(.invalidTimestamp, field: name) }
        let skew = limits.maxFutureSkewSeconds * 1_000_000
        let latest = clock.latestReading
        if latest == .min || t.micros > latest &+ skew {
            guard t.micros <= clock.read() + skew else { throw RecordRejection(.futureTimestamp, field: name) }
        }
        return t
    }

    func timestamp(_ name: StaticString) throws(RecordRejection) -> Timestamp {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        return try timestampValue(v, name)
    }

    func optionalTimestamp(_ name: StaticString) throws(RecordRejection) -> Timestamp? {
        guard let v = present(name) else { return nil }
        return try timestampValue(v, name)
    }

    private func timestampValue(_ v: Int, _ name: StaticString) throws(RecordRejection) -> Timestamp {
        guard tape[v].kind == .string else { throw RecordRejection(.wrongType, field: name) }
        return try instant(withStringBytes(v, { $0.count <= 40 ? Timestamp.parseRFC3339(bytes: $0) : nil }), name)
    }

    /// Calls `body` with a string entry's bytes (unescaped: in place; escaped: a decoded copy).
    private func withStringBytes<T>(_ v: Int, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        if let raw = tape.rawBytes(v, in: bytes) { return body(raw) }
        return tape.unescaped(v, in: bytes).withUnsafeBufferPointer(body)
    }

    func money(_ name: StaticString) throws(RecordRejection) -> Double {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        return try moneyValue(v, name)
    }

    func optionalMoney(_ name: StaticString) throws(RecordRejection) -> Double? {
        guard let v = present(name) else { return nil }
        return try moneyValue(v, name)
    }

    private func moneyValue(_ v: Int, _ name: StaticString) throws(RecordRejection) -> Double {
        guard tape[v].kind == .number else { throw RecordRejection(.wrongType, field: name) }
        let d = tape[v].number
        guard d.isFinite, d >= 0, d <= limits.maxMoney else { throw RecordRejection(.invalidMoney, field: name) }
        return d == 0 ? 0 : d  // no negative zero
    }

    func optionalCurrency(_ name: StaticString) throws(RecordRejection) -> CurrencyCode? {
        guard let v = present(name) else { return nil }
        guard tape[v].kind == .string else { throw RecordRejection(.wrongType, field: name) }
        if let raw = tape.rawBytes(v, in: bytes), let code = CurrencyCode(raw) { return code }
        let s = try stringValue(v, name, maxLength: 3, minLength: 1)
        guard let code = CurrencyCode(s.utf8) else { throw RecordRejection(.invalidValue, field: name) }
        return code
    }

    func metricSummaries(_ name: StaticString) throws(RecordRejection) -> [MetricSummary] {
        guard let v = present(name) else { return [] }
        guard tape[v].kind == .object else { throw RecordRejection(.wrongType, field: name) }
        guard tape[v].count <= 64 else { throw RecordRejection(.invalidValue, field: name) }
        var out = arrays?.takeMetricSummaries() ?? []
        out.reserveCapacity(Int(tape[v].count))
        // With several faults the reason is the first faulty metric's in name order, as if they were
        // checked in that order, so that it does not depend on the members' order.
        var firstFault: (metric: String, rejection: RecordRejection)?
        for (nameEntry, summary) in tape.members(of: v) {
            let metric = interned(nameEntry)
            do throws(RecordRejection) {
                let isToken = tape.rawBytes(nameEntry, in: bytes).map { Self.isToken($0, maxLength: 64) } ?? Self.isToken(metric, maxLength: 64)
                guard isToken else { throw RecordRejection(.invalidValue, field: name) }
                out.append(try metricSummary(name: metric, summary: summary, field: name))
            } catch {
                if firstFault.map({ metric < $0.metric }) ?? true { firstFault = (metric, error) }
            }
        }
        if let firstFault { throw firstFault.rejection }
        if out.count > 1 { out.sort { $0.name < $1.name } }
        return out
    }

    /// A name or short value from the tape, shared when it repeats (unescaped), else a new String.
    private func interned(_ entry: Int) -> String {
        if let raw = tape.rawBytes(entry, in: bytes) { return tape.strings.string(raw) }
        return tape.string(entry, in: bytes)
    }

    /// A metric's summary (its name is a token already).
    private func metricSummary(name metric: String, summary: Int, field name: StaticString) throws(RecordRejection) -> MetricSummary {
        guard tape[summary].kind == .object else { throw RecordRejection(.wrongType, field: name) }
        let avgEntry = tape.member("avg", of: summary, in: bytes)
        let p95Entry = tape.member("p95", of: summary, in: bytes)
        guard let avgEntry, let p95Entry, tape[avgEntry].kind == .number, tape[p95Entry].kind == .number else {
            throw RecordRejection(avgEntry == nil || p95Entry == nil ? .invalidValue : .wrongType, field: name)
        }
        let avg = tape[avgEntry].number
        let p95 = tape[p95Entry].number
        guard avg.isFinite, p95.isFinite, abs(avg) <= limits.maxMetricValue, abs(p95) <= limits.maxMetricValue else {
            throw RecordRejection(.invalidValue, field: name)
        }
        var trend: MetricTrend?
        if let t = tape.member("trend", of: summary, in: bytes), tape[t].kind != .null {
            guard tape[t].kind == .string else { throw RecordRejection(.wrongType, field: name) }
            let trends = MetricTrend.allowed
            guard let i = tape.rawBytes(t, in: bytes).map(trends.index) ?? trends.index(tape.string(t, in: bytes)) else {
                throw RecordRejection(.invalidValue, field: name)
            }
            trend = MetricTrend.allCases[i]
        }
        return MetricSummary(name: metric, avg: avg, p95: p95, trend: trend)
    }

    func tags(_ name: StaticString) throws(RecordRejection) -> ScanTags {
        guard let v = present(name) else { return ScanTags() }
        guard tape[v].kind == .object else { throw RecordRejection(.wrongType, field: name) }
        guard tape[v].count <= limits.maxTags else { throw RecordRejection(.invalidValue, field: name) }
        var tags = ScanTags(keys: arrays?.takeTagKeys() ?? TagKeys())
        // Set at the first key that is not plain ASCII as sent: from there, every key takes the
        // String rule (the ASCII ones before it are in already, lower-cased, which it leaves as they are).
        var stringKeys: [String]?
        for (keyEntry, value) in tape.members(of: v) {
            // The key is checked first, then its value's type, whichever path the key takes.
            let environmentKey: String?
            if stringKeys == nil, let raw = tape.rawBytes(keyEntry, in: bytes), let isTagKey = Self.isASCIITagKey(raw) {
                guard isTagKey else { throw RecordRejection(.invalidValue, field: name) }
                tags.keys.insert(lowercasingASCII: raw)
                environmentKey = ScanTags.namesEnvironment(raw) ? String(decoding: raw, as: UTF8.self) : nil
            } else {
                let key = tape.string(keyEntry, in: bytes)
                guard Self.isTagKey(key) else { throw RecordRejection(.invalidValue, field: name) }
                if stringKeys == nil { stringKeys = tags.keys.strings }
                stringKeys!.append(key)
                environmentKey = ScanTags.namesEnvironment(key) ? key : nil
            }
            let kind = tape[value].kind
            guard kind == .null || kind == .string else { throw RecordRejection(.wrongType, field: name) }
            if let environmentKey { tags.considerForEnvironment(key: environmentKey) { kind == .null ? nil : tape.string(value, in: bytes) } }
        }
        if let stringKeys { tags.keys = TagKeys(normalizing: stringKeys, reusing: tags.takeKeys().elements) }
        return tags
    }

    /// 1–128 characters, no control characters (C0, DEL or C1).
    static func isTagKey(_ key: String) -> Bool {
        if let ascii = key.utf8.withContiguousStorageIfAvailable(isASCIITagKey) ?? nil { return ascii }
        let scalars = key.unicodeScalars
        return !scalars.isEmpty && (key.utf8.count <= 128 || scalars.count <= 128)
            && !scalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
    }

    /// The same rule on the bytes of a key that is all ASCII; nil when it is not.
    static func isASCIITagKey(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
        var control = false
        for b in bytes {
            if b >= 0x80 { return nil }
            if b < 0x20 || b == 0x7F { control = true }
        }
        return (1...128).contains(bytes.count) && !control
    }

    func points(_ name: StaticString) throws(RecordRejection) -> [MetricPoint] {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        guard tape[v].kind == .array else { throw RecordRejection(.wrongType, field: name) }
        let count = Int(tape[v].count)
        guard count > 0, count <= limits.maxMetricPoints else { throw RecordRejection(.invalidValue, field: name) }
        var out = arrays?.takeMetricPoints() ?? []
        out.reserveCapacity(count)
        for item in tape.elements(of: v) {
            guard tape[item].kind == .object else { throw RecordRejection(.wrongType, field: name) }
            guard let tsEntry = present("ts", in: item), let valueEntry = present("value", in: item) else {
                throw RecordRejection(.missingField, field: name)
            }
            guard tape[tsEntry].kind == .string, tape[valueEntry].kind == .number else {
                throw RecordRejection(.wrongType, field: name)
            }
            let ts = try instant(withStringBytes(tsEntry, Timestamp.parseRFC3339(bytes:)), name)
            let value = tape[valueEntry].number
            guard value.isFinite, abs(value) <= limits.maxMetricValue else { throw RecordRejection(.invalidValue, field: name) }
            out.append(MetricPoint(ts: ts, value: value))
        }
        return out
    }
}

/// A fixed set of short allowed values, matched on a value's bytes where it stands, so that a
/// record that uses one makes no String. Each value is kept as two words and its length, so a
/// match is a few integer comparisons.
struct AllowedStrings: Sendable {
    private let packed: [Packed]

    private struct Packed: Equatable {
        var low: UInt64
        var high: UInt64
        var count: Int
    }

    static let maxLength = 16

    init(_ values: [String]) {
        precondition(values.allSatisfy { $0.utf8.count <= Self.maxLength }, "allowed values are short")
        packed = values.map { value in
            var value = value
            return value.withUTF8 { Self.pack($0)! }
        }
    }

    private static func pack(_ raw: UnsafeBufferPointer<UInt8>) -> Packed? {
        guard raw.count <= maxLength else { return nil }
        var words = (UInt64(0), UInt64(0))
        for (i, b) in raw.enumerated() {
            if i < 8 { words.0 |= UInt64(b) << (8 * UInt64(i)) } else { words.1 |= UInt64(b) << (8 * UInt64(i - 8)) }
        }
        return Packed(low: words.0, high: words.1, count: raw.count)
    }

    func index(_ raw: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let p = Self.pack(raw) else { return nil }
        return packed.firstIndex(of: p)
    }

    func index(_ s: String) -> Int? {
        var s = s
        return s.withUTF8 { index($0) }
    }
}

/// An enumeration that a record spells as one of its cases' raw values, decoded by matching the
/// value's bytes (`FieldReader.enumeration`).
protocol StringCases: CaseIterable, RawRepresentable where RawValue == String, AllCases == [Self] {
    /// The cases' raw values, in `allCases` order.
    static var allowed: AllowedStrings { get }
}

extension Provider: StringCases { static let allowed = AllowedStrings(allCases.map(\.rawValue)) }
extension Confidence: StringCases { static let allowed = AllowedStrings(allCases.map(\.rawValue)) }
extension MetricTrend: StringCases { static let allowed = AllowedStrings(allCases.map(\.rawValue)) }
extension UserAction: StringCases { static let allowed = AllowedStrings(allCases.map(\.rawValue)) }
extension PrivacyRequestKind: StringCases { static let allowed = AllowedStrings(allCases.map(\.rawValue)) }
extension CostType: StringCases { static let allowed = AllowedStrings(allCases.map(\.rawValue)) }
