/// Applies SPEC §3 to a decoded record: pseudonyms for every id, region buckets, tag keys without
/// values, an environment class, and derived temporal features. One per thread (see Pseudonymizer).
public final class Anonymizer {
    public let pseudonymizer: Pseudonymizer
    public let regions: RegionTable
    /// Called with the provider when a region is not in the table (for the unknown-regions metric).
    public var onUnknownRegion: ((Provider) -> Void)?

    public init(key: HMACKey, regions: RegionTable) {
        pseudonymizer = Pseudonymizer(key: key)
        self.regions = regions
    }

    public var keyId: String { pseudonymizer.keyId }

    public func anonymize(_ record: consuming InputRecord) -> AnonymizedRecord {
        let p = pseudonymizer
        switch consume record {
        case .scan(var r):
            let (bucket, known) = regions.bucket(provider: r.provider, region: r.region)
            if !known { onUnknownRegion?(r.provider) }
            var age: Int?
            var hour: Int?
            var dow: Int?
            if let created = r.resourceCreatedAt {
                let micros = r.detectedAt.micros - created.micros
                age = micros > 0 ? Int(micros / 86_400_000_000) : 0
                hour = created.civil.hour
                dow = created.isoWeekday
            }
            return .training(TrainingRow(
                scanHash: p.pseudonym(.scan, r.scanId),
                resourceHash: p.pseudonym(.resource, r.resourceId, provider: r.provider),
                accountHash: p.pseudonym(.account, r.cloudAccountId, provider: r.provider),
                userHash: p.pseudonym(.user, r.userId),
                eventHash: p.pseudonym(.event, r.eventId),
                provider: r.provider,
                regionBucket: bucket,
                resourceType: r.resourceType,
                scenario: r.scenario,
                confidence: r.confidence,
                estimatedMonthlyCost: r.estimatedMonthlyCost,
                currency: r.currency,
                resourceAgeDays: age,
                createdHourUTC: hour,
                createdDOW: dow,
                metrics: r.metrics,
                tagKeys: r.tags.takeKeys(),
                envClass: Self.environmentClass(r.tags),
                parentHash: r.parentResourceId.map { p.pseudonym(.resource, $0, provider: r.provider) },
                detectedAt: r.detectedAt
            ))
        case .action(let r):
            return .action(ActionRow(
                eventHash: p.pseudonym(.event, r.eventId),
                userHash: p.pseudonym(.user, r.userId),
                accountHash: p.pseudonym(.account, r.cloudAccountId, provider: r.provider),
                resourceHash: p.pseudonym(.resource, r.resourceId, provider: r.provider),
                provider: r.provider,
                resourceType: r.resourceType,
                action: r.action,
                detectedAt: r.detectedAt,
                actionAt: r.actionAt,
                timeToActionHours: Double(r.actionAt.micros - r.detectedAt.micros) / 3_600_000_000,
                costSavedMonthly: r.costSavedMonthly,
                currency: r.currency
            ))
        case .lifecycle(let r):
            return .lifecycle(LifecycleRow(
                eventHash: p.pseudonym(.event, r.eventId),
                accountHash: p.pseudonym(.account, r.cloudAccountId, provider: r.provider),
                resourceHash: p.pseudonym(.resource, r.resourceId, provider: r.provider),
                provider: r.provider,
                resourceType: r.resourceType,
                fromState: r.fromState,
                toState: r.toState,
                occurredAt: r.occurredAt
            ))
        case .metrics(let r):
            return .metricPoints(MetricPointRows(
                resourceHash: p.pseudonym(.resource, r.resourceId, provider: r.provider),
                accountHash: p.pseudonym(.account, r.cloudAccountId, provider: r.provider),
                metric: r.metric, provider: r.provider, unit: r.unit, points: r.points
            ))
        case .privacy(let r):
            return .privacy(PrivacyRow(
                eventHash: p.pseudonym(.event, r.eventId),
                userHash: p.pseudonym(.user, r.userId),
                request: r.request,
                requestedAt: r.requestedAt
            ))
        case .billed(let r):
            return .billed(BilledCostRow(
                eventHash: p.pseudonym(.event, r.eventId),
                accountHash: p.pseudonym(.account, r.cloudAccountId, provider: r.provider),
                resourceHash: p.pseudonym(.resource, r.resourceId, provider: r.provider),
                provider: r.provider,
                usageDate: r.usageDate,
                costType: r.costType,
                amount: r.amount,
                currency: r.currency,
                source: r.source
            ))
        }
    }

    /// The class of a lower-cased environment value. A switch, not a dictionary: these are short
    /// strings, compared inline, where a lookup hashed every scan's value with SipHash.
    static func environmentClass(ofValue value: String) -> String {
        switch value {
        case "prod", "production", "prd", "live": "prod"
        case "staging", "stage", "stg", "preprod", "pre-prod", "uat": "staging"
        case "dev", "development", "develop": "dev"
        case "test", "testing", "qa": "test"
        default: "other"
        }
    }

    /// prod/staging/dev/test from the environment tag's value, `other` for any other value, nil without one.
    static func environmentClass(_ tags: ScanTags) -> String? {
        guard let tag = tags.environment else { return nil }
        guard let raw = tag.value else { return "other" }
        let value = asciiLowercased(raw, unlessPadded: true) ?? raw.trimmingCharacters(in: .whitespaces).lowercased()
        return environmentClass(ofValue: value)
    }

    static func metricsJSON(_ metrics: [MetricSummary]) -> String { String(decoding: MetricsJSON.bytes(metrics), as: UTF8.self) }
}

/// `s` lower-cased, when it is plain ASCII (and, with `unlessPadded`, has no surrounding space or
/// tab); nil otherwise, for the Unicode-aware path. The common case allocates nothing.
@inline(__always)
func asciiLowercased(_ s: String, unlessPadded: Bool = false) -> String? {
    var text = s
    return text.withUTF8 { u -> String? in
        var upper = false
        for b in u {
            if b >= 0x80 { return nil }
            if b >= 65 && b <= 90 { upper = true }
        }
        if unlessPadded, let first = u.first, let last = u.last,
           first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 { return nil }
        guard upper else { return s }
        return String(unsafeUninitializedCapacity: u.count) { out in
            for (i, b) in u.enumerated() { out[i] = asciiLowercased(b) }
            return u.count
        }
    }
}

/// An ASCII capital letter's lower case; any other byte as it is.
@inline(__always)
func asciiLowercased(_ b: UInt8) -> UInt8 { b &- 65 < 26 ? b | 0x20 : b }

/// A finite Double as a JSON number (integers without ".0").
func jsonNumber(_ d: Double) -> String {
    if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
    return "\(d)"
}

import Foundation
