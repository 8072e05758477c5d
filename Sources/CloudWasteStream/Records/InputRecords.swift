/// The cloud a record comes from. Anything else is rejected as `unknown_provider`.
public enum Provider: String, Sendable, CaseIterable {
    case aws, azure, gcp, microsoft365

    /// Its position in `allCases`, for tables kept per provider.
    var index: Int {
        switch self {
        case .aws: 0
        case .azure: 1
        case .gcp: 2
        case .microsoft365: 3
        }
    }
}

/// The input topics of SPEC §2, independent of their configured names.
public enum InputTopic: String, Sendable, CaseIterable {
    case scanResources = "scan-resources"
    case userActions = "user-actions"
    case resourceLifecycle = "resource-lifecycle"
    case metricSamples = "metric-samples"
    case privacyRequests = "privacy-requests"
    case billedCosts = "billed-costs"

    /// Topic name under a prefix, e.g. `cloudwaste.scan-resources.v1`.
    public func name(prefix: String) -> String { "\(prefix)\(rawValue).v1" }
}

/// Where a metric was heading over the scan's window.
public enum MetricTrend: String, Sendable, CaseIterable { case down, flat, up }

public struct MetricSummary: Equatable, Sendable {
    public var name: String
    public var avg: Double
    public var p95: Double
    public var trend: MetricTrend?
}

/// How sure the scanner is that the resource is wasted.
public enum Confidence: String, Sendable, CaseIterable { case critical, high, medium, low }

/// A scanner's finding: one wasted resource seen by one scan.
public struct ScanResourceRecord: Equatable, Sendable {
    public var eventId: Identifier
    public var scanId: Identifier
    public var detectedAt: Timestamp
    public var userId: Identifier
    public var cloudAccountId: Identifier
    public var provider: Provider
    public var region: String
    public var resourceType: String
    public var resourceId: Identifier
    public var scenario: String
    public var confidence: Confidence
    public var estimatedMonthlyCost: Double
    public var resourceCreatedAt: Timestamp?
    public var currency: CurrencyCode
    public var metrics: [MetricSummary]
    public var tags: ScanTags
    public var parentResourceId: Identifier?

    public static func == (a: Self, b: Self) -> Bool {
        a.eventId == b.eventId && a.scanId == b.scanId && a.detectedAt == b.detectedAt && a.userId == b.userId
            && a.cloudAccountId == b.cloudAccountId && a.provider == b.provider && a.region == b.region
            && a.resourceType == b.resourceType && a.resourceId == b.resourceId && a.scenario == b.scenario
            && a.confidence == b.confidence && a.estimatedMonthlyCost == b.estimatedMonthlyCost
            && a.resourceCreatedAt == b.resourceCreatedAt && a.currency == b.currency && a.metrics == b.metrics
            && a.tags == b.tags
            && a.parentResourceId == b.parentResourceId
    }
}

public enum UserAction: String, Sendable, CaseIterable { case deleted, ignored, kept }

/// What a user did about a finding.
public struct UserActionRecord: Equatable, Sendable {
    public var eventId: Identifier
    public var userId: Identifier
    public var cloudAccountId: Identifier
    public var provider: Provider
    public var resourceId: Identifier
    public var resourceType: String
    public var action: UserAction
    public var detectedAt: Timestamp
    public var actionAt: Timestamp
    public var costSavedMonthly: Double?
    /// ISO 4217; USD when the record has none.
    public var currency: CurrencyCode = .usd
}

/// A resource changing state (created, stopped, deleted, ...).
public struct ResourceLifecycleRecord: Equatable, Sendable {
    public var eventId: Identifier
    public var cloudAccountId: Identifier
    public var provider: Provider
    public var resourceId: Identifier
    public var resourceType: String
    public var toState: String
    public var occurredAt: Timestamp
    public var fromState: String?
}

public struct MetricPoint: Equatable, Sendable {
    public var ts: Timestamp
    public var value: Double
}

/// A slice of a resource's metric time series.
public struct MetricSampleRecord: Equatable, Sendable {
    public var cloudAccountId: Identifier
    public var provider: Provider
    public var resourceId: Identifier
    public var metric: String
    public var points: [MetricPoint]
    public var unit: String?
}

public enum PrivacyRequestKind: String, Sendable, CaseIterable { case optOut = "opt_out", optIn = "opt_in", erase }

/// A user's consent change or erasure request.
public struct PrivacyRequestRecord: Equatable, Sendable {
    public var eventId: Identifier
    public var userId: Identifier
    public var request: PrivacyRequestKind
    public var requestedAt: Timestamp
}

public enum CostType: String, Sendable, CaseIterable { case unblended, amortized, net }

/// What a billing API reported for one resource and day (AWS Cost Explorer / CUR line items, Azure
/// Cost Management, GCP billing export). Billing data is restated: the same resource, day and cost
/// type may come again with a corrected amount; the latest record wins.
public struct BilledCostRecord: Equatable, Sendable {
    public var eventId: Identifier
    public var cloudAccountId: Identifier
    public var provider: Provider
    public var resourceId: Identifier
    /// The billing day (UTC midnight).
    public var usageDate: Timestamp
    public var amount: Double
    public var currency: CurrencyCode
    public var costType: CostType
    public var source: String?
}

/// One decoded, validated input record.
public enum InputRecord: Equatable, Sendable {
    case scan(ScanResourceRecord)
    case action(UserActionRecord)
    case lifecycle(ResourceLifecycleRecord)
    case metrics(MetricSampleRecord)
    case privacy(PrivacyRequestRecord)
    case billed(BilledCostRecord)
}
