/// Rows as they reach PostgreSQL: pseudonyms, buckets and derived features only. Nothing here can
/// hold a raw identifier, a name or a tag value.
public struct TrainingRow: Equatable, Sendable {
    public var scanHash: Pseudonym
    public var resourceHash: Pseudonym
    public var accountHash: Pseudonym
    public var userHash: Pseudonym
    public var eventHash: Pseudonym
    public var provider: Provider
    public var regionBucket: String
    public var resourceType: String
    public var scenario: String
    public var confidence: Confidence
    public var estimatedMonthlyCost: Double
    public var currency: CurrencyCode
    public var resourceAgeDays: Int?
    public var createdHourUTC: Int?
    public var createdDOW: Int?
    /// The metric summaries in name order, stored as jsonb with fixed keys (`metricsJSON`),
    /// written straight into the COPY row.
    public var metrics: [MetricSummary]
    public var tagKeys: TagKeys
    public var envClass: String?
    public var parentHash: Pseudonym?
    public var detectedAt: Timestamp
}

extension TrainingRow {
    /// The stored jsonb text: `{"CPUUtilization":{"avg":1.5,"p95":3,"trend":"down"}}`.
    public var metricsJSON: String { Anonymizer.metricsJSON(metrics) }
}

public struct ActionRow: Equatable, Sendable {
    public var eventHash: Pseudonym
    public var userHash: Pseudonym
    public var accountHash: Pseudonym
    public var resourceHash: Pseudonym
    public var provider: Provider
    public var resourceType: String
    public var action: UserAction
    public var detectedAt: Timestamp
    public var actionAt: Timestamp
    public var timeToActionHours: Double
    public var costSavedMonthly: Double?
    public var currency: CurrencyCode
}

public struct LifecycleRow: Equatable, Sendable {
    public var eventHash: Pseudonym
    public var accountHash: Pseudonym
    public var resourceHash: Pseudonym
    public var provider: Provider
    public var resourceType: String
    public var fromState: String?
    public var toState: String
    public var occurredAt: Timestamp
}

public struct MetricPointRow: Equatable, Sendable {
    public var resourceHash: Pseudonym
    public var metric: String
    public var ts: Timestamp
    public var accountHash: Pseudonym
    public var provider: Provider
    public var unit: String?
    public var value: Double
}

/// A metrics record's points as rows of cloudwatch_metrics_history: the series' pseudonyms and
/// names once, the points as decoded, so that a record's rows cost no array of their own (the
/// points go back to the preparer's `RecycledArrays` once encoded).
public struct MetricPointRows: RandomAccessCollection, Equatable, Sendable {
    public var resourceHash: Pseudonym
    public var accountHash: Pseudonym
    public var metric: String
    public var provider: Provider
    public var unit: String?
    public var points: [MetricPoint]

    public var startIndex: Int { points.startIndex }
    public var endIndex: Int { points.endIndex }
    public subscript(i: Int) -> MetricPointRow {
        MetricPointRow(resourceHash: resourceHash, metric: metric, ts: points[i].ts, accountHash: accountHash,
                       provider: provider, unit: unit, value: points[i].value)
    }
}

public struct PrivacyRow: Equatable, Sendable {
    public var eventHash: Pseudonym
    public var userHash: Pseudonym
    public var request: PrivacyRequestKind
    public var requestedAt: Timestamp
}

/// One billed day of one resource: pseudonyms for the account and the resource, the money as billed.
public struct BilledCostRow: Equatable, Sendable {
    public var eventHash: Pseudonym
    public var accountHash: Pseudonym
    public var resourceHash: Pseudonym
    public var provider: Provider
    public var usageDate: Timestamp
    public var costType: CostType
    public var amount: Double
    public var currency: CurrencyCode
    public var source: String?
}

public enum AnonymizedRecord: Equatable, Sendable {
    case training(TrainingRow)
    case action(ActionRow)
    case lifecycle(LifecycleRow)
    case metricPoints(MetricPointRows)
    case privacy(PrivacyRow)
    case billed(BilledCostRow)
}
