import CloudWastePostgres

/// A detection as the window state sees it: one user's estimate of one resource in one
/// account-month and currency. A batch reduces its scan rows to the latest detection per user,
/// resource, month and currency (by detection time, then source position) before they reach
/// PostgreSQL, counting the records each stands for. The state keeps each user's latest, so that a
/// privacy request corrects it from that user's rows alone (docs/windows.md).
public struct WindowDetection: Sendable, Equatable {
    public var accountHash: Pseudonym
    /// First day of the UTC month, as days since 1970-01-01.
    public var monthDays: Int
    public var resourceHash: Pseudonym
    public var userHash: Pseudonym
    public var provider: Provider
    public var resourceType: String
    public var cost: Double
    public var currency: CurrencyCode
    public var detectedAt: Timestamp
    /// Where the record stands in its topic (the topic is always the scans', so it is not kept:
    /// a detection copies without retaining a topic name).
    public var sourcePartition: Int32
    public var sourceOffset: Int64
    public var records = 1

    init(_ r: TrainingRow, source: SourcePosition) {
        accountHash = r.accountHash
        monthDays = r.detectedAt.monthStart.unixDays
        resourceHash = r.resourceHash
        userHash = r.userHash
        provider = r.provider
        resourceType = r.resourceType
        cost = r.estimatedMonthlyCost
        currency = r.currency
        detectedAt = r.detectedAt
        sourcePartition = source.partition
        sourceOffset = source.offset
    }

    /// Whether this detection replaces `other` in the window state (the later one, ties by source position).
    func isNewer(than other: WindowDetection) -> Bool {
        (detectedAt.micros, sourcePartition, sourceOffset) >= (other.detectedAt.micros, other.sourcePartition, other.sourceOffset)
    }

    /// The latest detection per resource, month, currency and user, with the records of each group
    /// counted, in key order (the order the window state is locked in). Sorting indices keeps the
    /// detections in place: pseudonyms compare as four words, and one copy per result (this runs on
    /// the writer's critical path for every batch).
    static func reduce(_ detections: [WindowDetection]) -> [WindowDetection] {
        guard detections.count > 1 else { return detections }
        // Read through the buffer: the array's subscript copied each detection the comparator
        // looked at (a third of this function's time in a profile of the daemon).
        return detections.withUnsafeBufferPointer { d in
            var order = Array(d.indices)
            order.sort { d[$0].keyPrecedes(d[$1]) }
            var out: [WindowDetection] = []
            out.reserveCapacity(d.count)
            var group = order[0]
            var records = d[group].records
            for i in order.dropFirst() {
                if d[i].hasSameKey(as: d[group]) {
                    records += d[i].records
                    if d[i].isNewer(than: d[group]) { group = i }
                } else {
                    out.append(d[group])
                    out[out.count - 1].records = records
                    group = i
                    records = d[i].records
                }
            }
            out.append(d[group])
            out[out.count - 1].records = records
            return out
        }
    }

    private func hasSameKey(as other: WindowDetection) -> Bool {
        monthDays == other.monthDays && accountHash == other.accountHash && resourceHash == other.resourceHash
            && currency == other.currency && userHash == other.userHash
    }

    private func keyPrecedes(_ other: WindowDetection) -> Bool {
        if accountHash != other.accountHash { return accountHash < other.accountHash }
        if monthDays != other.monthDays { return monthDays < other.monthDays }
        if resourceHash != other.resourceHash { return resourceHash < other.resourceHash }
        if currency != other.currency { return currency < other.currency }
        return userHash < other.userHash
    }
}

extension TableDescription where Row == WindowDetection {
    /// The staging table of a batch's reduced detections (`CostTrendWindows.detectionState`).
    public static let windowDetections = TableDescription(name: "window_detections", key: ["account_hash", "month", "resource_hash", "currency", "user_hash"], columns: [
        .init("account_hash", .bytea) { r, e in e.pseudonym(r.accountHash) },
        .init("month", .date) { r, e in e.date(unixDays: r.monthDays) },
        .init("resource_hash", .bytea) { r, e in e.pseudonym(r.resourceHash) },
        .init("user_hash", .bytea) { r, e in e.pseudonym(r.userHash) },
        .init("provider", .text) { r, e in e.text(r.provider.rawValue) },
        .init("resource_type", .text) { r, e in e.text(r.resourceType) },
        .init("estimated_monthly_cost", .float8) { r, e in e.float8(r.cost) },
        .init("currency", .text) { r, e in e.currency(r.currency) },
        .init("detected_at", .timestamptz) { r, e in e.timestamptz(unixMicros: r.detectedAt.micros) },
        .init("source_partition", .int4) { r, e in e.int4(Int(r.sourcePartition)) },
        .init("source_offset", .int8) { r, e in e.int8(r.sourceOffset) },
        .init("records", .int4) { r, e in e.int4(r.records) },
    ], storesProvenance: false)
}
