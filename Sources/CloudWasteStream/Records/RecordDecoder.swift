import Glibc

/// Turns a topic's raw bytes into a validated record, or a precise rejection. The clock is
/// injected, so the future-timestamp rule is testable; the decoder keeps its latest reading
/// (`CachedClock`), so with an injected clock that goes backwards a result can depend on the
/// records decoded before.
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

    public let limits: Limits
    private let clock: CachedClock
    /// The first instant of `limits.earliestYear`, in microseconds since 1970.
    private let earliest: Int64

    public init(limits: Limits = Limits(), now: @escaping @Sendable () -> Timestamp = Timestamp.now) {
        self.limits = limits
        clock = CachedClock(now)
        earliest = Int64(Timestamp.daysFromCivil(year: limits.earliestYear, month: 1, day: 1)) * 86_400_000_000
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

    public func decode(_ topic: InputTopic, _ payload: [UInt8]?, pseudonymizer: Pseudonymizer? = nil) throws(RecordRejection) -> InputRecord {
        var tape = JSONTape()
        guard let payload else { throw RecordRejection(.emptyPayload) }
        return try payload.withUnsafeBufferPointer { (bytes) throws(RecordRejection) -> InputRecord in
            try decode(topic, bytes, tape: &tape, pseudonymizer: pseudonymizer)
        }
    }

    /// The hot path: the payload is read where it is (borrowed for the duration of the call, e.g.
    /// librdkafka's buffer), through a tape that the caller reuses from record to record. With a
    /// pseudonymizer, ids are kept as their pseudonyms (`Identifier`), hashed from those bytes.
    /// With `arrays`, a record's arrays (a scan's summaries and tag keys, a metrics record's
    /// points) are refilled from there instead of allocated.
    public func decode(_ topic: InputTopic, _ payload: UnsafeBufferPointer<UInt8>?,
                       tape: inout JSONTape, pseudonymizer: Pseudonymizer? = nil,
                       arrays: RecycledArrays? = nil) throws(RecordRejection) -> InputRecord {
        guard let payload, !payload.isEmpty else { throw RecordRejection(.emptyPayload) }
        guard payload.count <= limits.maxPayloadBytes else { throw RecordRejection(.payloadTooLarge) }
        do {
            tape.maxDepth = limits.maxDepth
            try tape.parse(payload)
        } catch {
            switch error {
            case .invalidUTF8: throw RecordRejection(.invalidUTF8)
            case .malformed:
                // Bytes that are not UTF-8 at all are reported as such, wherever they stand.
                throw RecordRejection(UTF8Validation.isValid(payload) ? .malformedJSON : .invalidUTF8)
            case .tooDeep: throw RecordRejection(.nestingTooDeep)
            case .numberOutOfRange(let top):
                throw RecordRejection(.invalidNumber, field: top.flatMap { knownField(topic, $0) })
            case .duplicateKey(let key, let top):
                throw RecordRejection(.duplicateField, field: knownField(topic, top ?? key))
            }
        }
        guard tape[0].kind == .object else { throw RecordRejection(.notAnObject) }
        tape.lookup.next = 1
        let r = FieldReader(tape: tape, bytes: payload, limits: limits, earliest: earliest, clock: clock, pseudonymizer: pseudonymizer, arrays: arrays)
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
        let region = try r.string("region", maxLength: 64, interned: true)
        let resourceType = try r.token("resource_type")
        let resourceId = try r.identifier("resource_id", maxLength: 2048)
        let scenario = try r.token("scenario")
        let confidence = try r.enumeration("confidence", as: Confidence.self)
        let cost = try r.money("estimated_monthly_cost")
        try r.skippedString("resource_name", maxLength: 1024, minLength: 0)
        let createdAt = try r.optionalTimestamp("resource_created_at")
        let currency = try r.optionalCurrency("currency") ?? .usd
        let metrics = try r.metricSummaries("metrics")
        let tags = try r.tags("tags")
        let parent = try r.optionalIdentifier("parent_resource_id", maxLength: 2048)
        return ScanResourceRecord(
            eventId: r.keep(eventId, .event), scanId: r.keep(scanId, .scan), detectedAt: detectedAt, userId: r.keep(userId, .user),
            cloudAccountId: r.keep(account, .account, provider: provider),
            provider: provider, region: region, resourceType: resourceType, resourceId: r.keep(resourceId, .resource, provider: provider),
            scenario: scenario, confidence: confidence, estimatedMonthlyCost: cost, resourceCreatedAt: createdAt,
            currency: currency, metrics: metrics, tags: tags,
            parentResourceId: parent.map { r.keep($0, .resource, provider: provider) }
        )
    }

    private func decodeAction(_ r: FieldReader) throws(RecordRejection) -> UserActionRecord {
        let eventId = try r.identifier("event_id")
        let userId = try r.identifier("user_id")
        let account = try r.identifier("cloud_account_id")
        let provider = try r.provider()
        let resourceId = try r.identifier("resource_id", maxLength: 2048)
        let resourceType = try r.token("resource_type")
        let action = try r.enumeration("action", as: UserAction.self)
        let detectedAt = try r.timestamp("detected_at")
        let actionAt = try r.timestamp("action_at")
        let saved = try r.optionalMoney("cost_saved_monthly")
        let currency = try r.optionalCurrency("currency") ?? .usd
        guard actionAt >= detectedAt else { throw RecordRejection(.inconsistentRecord, field: "action_at") }
        return UserActionRecord(
            eventId: r.keep(eventId, .event), userId: r.keep(userId, .user), cloudAccountId: r.keep(account, .account, provider: provider),
            provider: provider, resourceId: r.keep(resourceId, .resource, provider: provider),
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
        let costType = try r.optionalEnumeration("cost_type", as: CostType.self) ?? .unblended
        let source = try r.optionalToken("source")
        return BilledCostRecord(eventId: r.keep(eventId, .event), cloudAccountId: r.keep(account, .account, provider: provider),
                                provider: provider, resourceId: r.keep(resourceId, .resource, provider: provider),
                                usageDate: usageDate, amount: amount, currency: currency, costType: costType, source: source)
    }

    private func decodeLifecycle(_ r: FieldReader) throws(RecordRejection) -> ResourceLifecycleRecord {
        let eventId = try r.identifier("event_id")
        let account = try r.identifier("cloud_account_id")
        let provider = try r.provider()
        let resourceId = try r.identifier("resource_id", maxLength: 2048)
        let resourceType = try r.token("resource_type")
        let toState = try r.token("to_state")
        let occurredAt = try r.timestamp("occurred_at")
        let fromState = try r.optionalToken("from_state")
        return ResourceLifecycleRecord(
            eventId: r.keep(eventId, .event), cloudAccountId: r.keep(account, .account, provider: provider), provider: provider,
            resourceId: r.keep(resourceId, .resource, provider: provider), resourceType: resourceType, toState: toState,
            occurredAt: occurredAt, fromState: fromState
        )
    }

    private func decodeMetrics(_ r: FieldReader) throws(RecordRejection) -> MetricSampleRecord {
        let account = try r.identifier("cloud_account_id")
        let provider = try r.provider()
        let resourceId = try r.identifier("resource_id", maxLength: 2048)
        let metric = try r.token("metric")
        let points = try r.points("points")
        let unit = try r.optionalUnit("unit")
        return MetricSampleRecord(
            cloudAccountId: r.keep(account, .account, provider: provider), provider: provider,
            resourceId: r.keep(resourceId, .resource, provider: provider), metric: metric, points: points, unit: unit
        )
    }

    private func decodePrivacy(_ r: FieldReader) throws(RecordRejection) -> PrivacyRequestRecord {
        let eventId = try r.identifier("event_id")
        let userId = try r.identifier("user_id")
        let request = try r.enumeration("request", as: PrivacyRequestKind.self)
        let requestedAt = try r.timestamp("requested_at")
        return PrivacyRequestRecord(eventId: r.keep(eventId, .event), userId: r.keep(userId, .user), request: request, requestedAt: requestedAt)
    }
}

