import Glibc

/// Turns a topic's raw bytes into a validated record, or a precise rejection. Pure: the clock is
/// injected, so the future-timestamp rule is testable.
///
/// Checks run in a fixed order (required fields in SPEC §2's order, then optional ones), so a
/// record with several faults always gets the same reason.
public struct RecordDecoder: Sendable {
    public struct Limits: Sendable {
        public var maxPayloadBytes = 1_048_576
        public var maxDepth = 32
        public var maxFutureSkewSeconds: Int64 = 86_400
        public var earliestYear = 2000
        public var maxMoney = 10_000_000.0
        public var maxMetricPoints = 10_000
        public var maxMetricValue = 1e15
        public var maxTags = 100
        public init() {}
    }

    public var limits: Limits
    public var now: @Sendable () -> Timestamp

    public init(limits: Limits = Limits(), now: @escaping @Sendable () -> Timestamp = Timestamp.now) {
        self.limits = limits
        self.now = now
    }

    static let knownFields: [InputTopic: Set<String>] = [
        .scanResources: ["event_id", "scan_id", "detected_at", "user_id", "cloud_account_id", "provider", "region",
                         "resource_type", "resource_id", "scenario", "confidence", "estimated_monthly_cost",
                         "resource_name", "resource_created_at", "currency", "metrics", "tags", "parent_resource_id"],
        .userActions: ["event_id", "user_id", "cloud_account_id", "provider", "resource_id", "resource_type", "action",
                       "detected_at", "action_at", "cost_saved_monthly", "currency"],
        .resourceLifecycle: ["event_id", "cloud_account_id", "provider", "resource_id", "resource_type", "to_state",
                             "occurred_at", "from_state"],
        .metricSamples: ["cloud_account_id", "provider", "resource_id", "metric", "points", "unit"],
        .privacyRequests: ["event_id", "user_id", "request", "requested_at"],
        .billedCosts: ["event_id", "cloud_account_id", "provider", "resource_id", "usage_date", "amount", "currency", "cost_type", "source"],
    ]

    /// Field names from the record are echoed in reasons only when they are the topic's own fields.
    private func knownField(_ topic: InputTopic, _ name: String) -> String? {
        Self.knownFields[topic]?.contains(name) == true ? name : nil
    }

    public func decode(_ topic: InputTopic, _ payload: [UInt8]?) throws(RecordRejection) -> InputRecord {
        guard let payload, !payload.isEmpty else { throw RecordRejection(.emptyPayload) }
        guard payload.count <= limits.maxPayloadBytes else { throw RecordRejection(.payloadTooLarge) }
        let root: JSONValue
        do {
            root = try JSONParser(maxDepth: limits.maxDepth).parse(payload)
        } catch {
            switch error {
            case .invalidUTF8: throw RecordRejection(.invalidUTF8)
            case .malformed:
                // Bytes that are not UTF-8 at all are reported as such, wherever they stand.
                let valid = payload.withUnsafeBufferPointer { String(validating: $0, as: UTF8.self) != nil }
                throw RecordRejection(valid ? .malformedJSON : .invalidUTF8)
            case .tooDeep: throw RecordRejection(.nestingTooDeep)
            case .numberOutOfRange(let top):
                throw RecordRejection(.invalidNumber, field: top.flatMap { knownField(topic, $0) })
            case .duplicateKey(let key, let top):
                throw RecordRejection(.duplicateField, field: knownField(topic, top ?? key))
            }
        }
        guard case .object(let fields) = root else { throw RecordRejection(.notAnObject) }
        let r = FieldReader(fields: fields, limits: limits, now: now())
        switch topic {
        case .scanResources: return .scan(try decodeScan(r))
        case .userActions: return .action(try decodeAction(r))
        case .resourceLifecycle: return .lifecycle(try decodeLifecycle(r))
        case .metricSamples: return .metrics(try decodeMetrics(r))
        case .privacyRequests: return .privacy(try decodePrivacy(r))
        case .billedCosts: return .billed(try decodeBilled(r))
        }
    }

    private func decodeScan(_ r: FieldReader) throws(RecordRejection) -> ScanResourceRecord {
        let eventId = try r.identifier("event_id")
        let scanId = try r.identifier("scan_id")
        let detectedAt = try r.timestamp("detected_at")
        let userId = try r.identifier("user_id")
        let account = try r.identifier("cloud_account_id")
        let provider = try r.provider()
        let region = try r.string("region", maxLength: 64)
        let resourceType = try r.token("resource_type")
        let resourceId = try r.identifier("resource_id", maxLength: 2048)
        let scenario = try r.token("scenario")
        let confidence = try r.enumeration("confidence", ["critical", "high", "medium", "low"])
        let cost = try r.money("estimated_monthly_cost")
        _ = try r.optionalString("resource_name", maxLength: 1024, minLength: 0)
        let createdAt = try r.optionalTimestamp("resource_created_at")
        let currency = try r.optionalCurrency("currency") ?? "USD"
        let metrics = try r.metricSummaries("metrics")
        let tags = try r.tags("tags")
        let parent = try r.optionalString("parent_resource_id", maxLength: 2048)
        return ScanResourceRecord(
            eventId: eventId, scanId: scanId, detectedAt: detectedAt, userId: userId, cloudAccountId: account,
            provider: provider, region: region, resourceType: resourceType, resourceId: resourceId,
            scenario: scenario, confidence: confidence, estimatedMonthlyCost: cost, resourceCreatedAt: createdAt,
            currency: currency, metrics: metrics, tags: tags, parentResourceId: parent
        )
    }

    private func decodeAction(_ r: FieldReader) throws(RecordRejection) -> UserActionRecord {
        let eventId = try r.identifier("event_id")
        let userId = try r.identifier("user_id")
        let account = try r.identifier("cloud_account_id")
        let provider = try r.provider()
        let resourceId = try r.identifier("resource_id", maxLength: 2048)
        let resourceType = try r.token("resource_type")
        let action = UserAction(rawValue: try r.enumeration("action", ["deleted", "ignored", "kept"]))!
        let detectedAt = try r.timestamp("detected_at")
        let actionAt = try r.timestamp("action_at")
        let saved = try r.optionalMoney("cost_saved_monthly")
        let currency = try r.optionalCurrency("currency") ?? "USD"
        guard actionAt >= detectedAt else { throw RecordRejection(.inconsistentRecord, field: "action_at") }
        return UserActionRecord(
            eventId: eventId, userId: userId, cloudAccountId: account, provider: provider, resourceId: resourceId,
            resourceType: resourceType, action: action, detectedAt: detectedAt, actionAt: actionAt,
            costSavedMonthly: saved, currency: currency
        )
    }

    private func decodeBilled(_ r: FieldReader) throws(RecordRejection) -> BilledCostRecord {
        let eventId = try r.identifier("event_id")
        let account = try r.identifier("cloud_account_id")
        let provider = try r.provider()
        let resourceId = try r.identifier("resource_id", maxLength: 2048)
        let usageDate = try r.date("usage_date")
        let amount = try r.money("amount")
        guard let currency = try r.optionalCurrency("currency") else { throw RecordRejection(.missingField, field: "currency") }
        let costType = try r.optionalEnumeration("cost_type", CostType.allCases.map(\.rawValue)).flatMap(CostType.init) ?? .unblended
        let source = try r.optionalToken("source")
        return BilledCostRecord(eventId: eventId, cloudAccountId: account, provider: provider, resourceId: resourceId,
                                usageDate: usageDate, amount: amount, currency: currency, costType: costType, source: source)
    }

    private func decodeLifecycle(_ r: FieldReader) throws(RecordRejection) -> ResourceLifecycleRecord {
        ResourceLifecycleRecord(
            eventId: try r.identifier("event_id"),
            cloudAccountId: try r.identifier("cloud_account_id"),
            provider: try r.provider(),
            resourceId: try r.identifier("resource_id", maxLength: 2048),
            resourceType: try r.token("resource_type"),
            toState: try r.token("to_state"),
            occurredAt: try r.timestamp("occurred_at"),
            fromState: try r.optionalToken("from_state")
        )
    }

    private func decodeMetrics(_ r: FieldReader) throws(RecordRejection) -> MetricSampleRecord {
        MetricSampleRecord(
            cloudAccountId: try r.identifier("cloud_account_id"),
            provider: try r.provider(),
            resourceId: try r.identifier("resource_id", maxLength: 2048),
            metric: try r.token("metric"),
            points: try r.points("points"),
            unit: try r.optionalUnit("unit")
        )
    }

    private func decodePrivacy(_ r: FieldReader) throws(RecordRejection) -> PrivacyRequestRecord {
        PrivacyRequestRecord(
            eventId: try r.identifier("event_id"),
            userId: try r.identifier("user_id"),
            request: PrivacyRequestKind(rawValue: try r.enumeration("request", ["opt_out", "opt_in", "erase"]))!,
            requestedAt: try r.timestamp("requested_at")
        )
    }
}

/// Typed, validated access to one JSON object's fields.
struct FieldReader {
    let fields: JSONObject
    let limits: RecordDecoder.Limits
    let now: Timestamp

    private func present(_ name: String) -> JSONValue? {
        switch fields[name] {
        case nil, .null?: nil
        case let v?: v
        }
    }

    func string(_ name: String, maxLength: Int) throws(RecordRejection) -> String {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        return try stringValue(v, name, maxLength: maxLength, minLength: 1)
    }

    func optionalString(_ name: String, maxLength: Int, minLength: Int = 1) throws(RecordRejection) -> String? {
        guard let v = present(name) else { return nil }
        return try stringValue(v, name, maxLength: maxLength, minLength: minLength)
    }

    private func stringValue(_ v: JSONValue, _ name: String, maxLength: Int, minLength: Int) throws(RecordRejection) -> String {
        guard case .string(let s) = v else { throw RecordRejection(.wrongType, field: name) }
        let bytes = s.utf8.count
        // Scalars never outnumber UTF-8 bytes, so counting scalars is needed only for long strings.
        guard bytes <= maxLength * 4, bytes <= maxLength || s.unicodeScalars.count <= maxLength, bytes >= minLength else {
            throw RecordRejection(.invalidValue, field: name)
        }
        if Self.containsNUL(s) { throw RecordRejection(.invalidValue, field: name) }
        return s
    }

    /// Only an escaped `\u0000` can put a NUL into a parsed string; memchr finds none fast.
    static func containsNUL(_ s: String) -> Bool {
        s.utf8.withContiguousStorageIfAvailable { b in b.baseAddress.map { memchr($0, 0, b.count) != nil } ?? false } ?? s.utf8.contains(0)
    }

    /// An id: non-empty after trimming white space.
    func identifier(_ name: String, maxLength: Int = 256) throws(RecordRejection) -> String {
        let s = try string(name, maxLength: maxLength)
        if let first = s.utf8.first, first > 0x20 && first < 0x7F { return s }  // fast path: starts with visible ASCII
        guard s.unicodeScalars.contains(where: { !$0.properties.isWhitespace }) else {
            throw RecordRejection(.invalidValue, field: name)
        }
        return s
    }

    /// `^[A-Za-z0-9_./-]{1,64}$`
    func token(_ name: String) throws(RecordRejection) -> String {
        let s = try string(name, maxLength: 64)
        guard Self.isToken(s, maxLength: 64) else { throw RecordRejection(.invalidValue, field: name) }
        return s
    }

    func optionalToken(_ name: String) throws(RecordRejection) -> String? {
        guard let s = try optionalString(name, maxLength: 64) else { return nil }
        guard Self.isToken(s, maxLength: 64) else { throw RecordRejection(.invalidValue, field: name) }
        return s
    }

    static func isToken(_ s: String, maxLength: Int, extra: UInt8? = nil) -> Bool {
        let u = s.utf8
        guard !u.isEmpty, u.count <= maxLength else { return false }
        return u.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
                || c == 95 || c == 46 || c == 47 || c == 45 || c == extra
        }
    }

    func optionalUnit(_ name: String) throws(RecordRejection) -> String? {
        guard let s = try optionalString(name, maxLength: 32) else { return nil }
        guard Self.isToken(s, maxLength: 32, extra: UInt8(ascii: "%")) else { throw RecordRejection(.invalidValue, field: name) }
        return s
    }

    func optionalEnumeration(_ name: String, _ allowed: [String]) throws(RecordRejection) -> String? {
        guard present(name) != nil else { return nil }
        return try enumeration(name, allowed)
    }

    /// A calendar day `YYYY-MM-DD` (UTC), from the year 2000 on and not after tomorrow.
    func date(_ name: String) throws(RecordRejection) -> Timestamp {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        guard case .string(let s) = v else { throw RecordRejection(.wrongType, field: name) }
        guard let t = Timestamp.parseDate(s), t.civil.year >= limits.earliestYear else {
            throw RecordRejection(.invalidTimestamp, field: name)
        }
        guard t.micros <= now.micros + limits.maxFutureSkewSeconds * 1_000_000 else {
            throw RecordRejection(.futureTimestamp, field: name)
        }
        return t
    }

    func enumeration(_ name: String, _ allowed: [String]) throws(RecordRejection) -> String {
        let s = try string(name, maxLength: 64)
        guard allowed.contains(s) else { throw RecordRejection(.invalidValue, field: name) }
        return s
    }

    func provider() throws(RecordRejection) -> Provider {
        let s = try string("provider", maxLength: 64)
        guard let p = Provider(rawValue: s) else { throw RecordRejection(.unknownProvider, field: "provider") }
        return p
    }

    func timestamp(_ name: String) throws(RecordRejection) -> Timestamp {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        return try timestampValue(v, name)
    }

    func optionalTimestamp(_ name: String) throws(RecordRejection) -> Timestamp? {
        guard let v = present(name) else { return nil }
        return try timestampValue(v, name)
    }

    private func timestampValue(_ v: JSONValue, _ name: String) throws(RecordRejection) -> Timestamp {
        guard case .string(let s) = v else { throw RecordRejection(.wrongType, field: name) }
        guard s.utf8.count <= 40, let t = Timestamp.parseRFC3339(s), t.civil.year >= limits.earliestYear else {
            throw RecordRejection(.invalidTimestamp, field: name)
        }
        guard t.micros <= now.micros + limits.maxFutureSkewSeconds * 1_000_000 else {
            throw RecordRejection(.futureTimestamp, field: name)
        }
        return t
    }

    func money(_ name: String) throws(RecordRejection) -> Double {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        return try moneyValue(v, name)
    }

    func optionalMoney(_ name: String) throws(RecordRejection) -> Double? {
        guard let v = present(name) else { return nil }
        return try moneyValue(v, name)
    }

    private func moneyValue(_ v: JSONValue, _ name: String) throws(RecordRejection) -> Double {
        guard case .number(let d) = v else { throw RecordRejection(.wrongType, field: name) }
        guard d.isFinite, d >= 0, d <= limits.maxMoney else { throw RecordRejection(.invalidMoney, field: name) }
        return d == 0 ? 0 : d  // no negative zero
    }

    func optionalCurrency(_ name: String) throws(RecordRejection) -> String? {
        guard let s = try optionalString(name, maxLength: 3) else { return nil }
        guard s.utf8.count == 3, s.utf8.allSatisfy({ $0 >= 65 && $0 <= 90 }) else {
            throw RecordRejection(.invalidValue, field: name)
        }
        return s
    }

    func metricSummaries(_ name: String) throws(RecordRejection) -> [MetricSummary] {
        guard let v = present(name) else { return [] }
        guard case .object(let metrics) = v else { throw RecordRejection(.wrongType, field: name) }
        guard metrics.count <= 64 else { throw RecordRejection(.invalidValue, field: name) }
        var out: [MetricSummary] = []
        for (metric, summary) in metrics.sorted(by: { $0.key < $1.key }) {
            guard Self.isToken(metric, maxLength: 64) else { throw RecordRejection(.invalidValue, field: name) }
            guard case .object(let s) = summary else { throw RecordRejection(.wrongType, field: name) }
            guard case .number(let avg)? = s["avg"], case .number(let p95)? = s["p95"] else {
                throw RecordRejection(s["avg"] == nil || s["p95"] == nil ? .invalidValue : .wrongType, field: name)
            }
            guard avg.isFinite, p95.isFinite, abs(avg) <= limits.maxMetricValue, abs(p95) <= limits.maxMetricValue else {
                throw RecordRejection(.invalidValue, field: name)
            }
            var trend: String?
            if let t = s["trend"], t != .null {
                guard case .string(let ts) = t else { throw RecordRejection(.wrongType, field: name) }
                guard ["down", "flat", "up"].contains(ts) else { throw RecordRejection(.invalidValue, field: name) }
                trend = ts
            }
            out.append(MetricSummary(name: metric, avg: avg, p95: p95, trend: trend))
        }
        return out
    }

    func tags(_ name: String) throws(RecordRejection) -> [(key: String, value: String?)] {
        guard let v = present(name) else { return [] }
        guard case .object(let tags) = v else { throw RecordRejection(.wrongType, field: name) }
        guard tags.count <= limits.maxTags else { throw RecordRejection(.invalidValue, field: name) }
        var out: [(key: String, value: String?)] = []
        for (key, value) in tags {
            guard Self.isTagKey(key) else { throw RecordRejection(.invalidValue, field: name) }
            switch value {
            case .null: out.append((key, nil))
            case .string(let s): out.append((key, s))
            default: throw RecordRejection(.wrongType, field: name)
            }
        }
        return out
    }

    /// 1–128 characters, no control characters (C0, DEL or C1).
    static func isTagKey(_ key: String) -> Bool {
        let ascii = key.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.allSatisfy { $0 < 0x80 } ? (1...128).contains(bytes.count) && bytes.allSatisfy { $0 >= 0x20 && $0 != 0x7F } : nil
        }
        if let ascii = ascii ?? nil { return ascii }
        let scalars = key.unicodeScalars
        return !scalars.isEmpty && (key.utf8.count <= 128 || scalars.count <= 128)
            && !scalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
    }

    func points(_ name: String) throws(RecordRejection) -> [MetricPoint] {
        guard let v = present(name) else { throw RecordRejection(.missingField, field: name) }
        guard case .array(let items) = v else { throw RecordRejection(.wrongType, field: name) }
        guard !items.isEmpty, items.count <= limits.maxMetricPoints else { throw RecordRejection(.invalidValue, field: name) }
        var out: [MetricPoint] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard case .object(let p) = item else { throw RecordRejection(.wrongType, field: name) }
            guard let tsValue = p["ts"], tsValue != .null, let valueValue = p["value"], valueValue != .null else {
                throw RecordRejection(.missingField, field: name)
            }
            guard case .string(let tsText) = tsValue, case .number(let value) = valueValue else {
                throw RecordRejection(.wrongType, field: name)
            }
            guard let ts = Timestamp.parseRFC3339(tsText), ts.civil.year >= limits.earliestYear else {
                throw RecordRejection(.invalidTimestamp, field: name)
            }
            guard ts.micros <= now.micros + limits.maxFutureSkewSeconds * 1_000_000 else {
                throw RecordRejection(.futureTimestamp, field: name)
            }
            guard value.isFinite, abs(value) <= limits.maxMetricValue else { throw RecordRejection(.invalidValue, field: name) }
            out.append(MetricPoint(ts: ts, value: value))
        }
        return out
    }
}
