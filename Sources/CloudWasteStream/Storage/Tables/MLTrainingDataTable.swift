import CloudWastePostgres

extension TableDescription where Row == TrainingRow {
    /// ml_training_data: one row per resource per scan, keyed by (scan_hash, resource_hash).
    public static let mlTrainingData = TableDescription(name: "ml_training_data", key: ["scan_hash", "resource_hash"], columns: [
        .init("scan_hash", .bytea) { r, e in e.pseudonym(r.scanHash) },
        .init("resource_hash", .bytea) { r, e in e.pseudonym(r.resourceHash) },
        .init("account_hash", .bytea) { r, e in e.pseudonym(r.accountHash) },
        .init("user_hash", .bytea) { r, e in e.pseudonym(r.userHash) },
        .init("event_hash", .bytea) { r, e in e.pseudonym(r.eventHash) },
        .init("provider", .text) { r, e in e.text(r.provider.rawValue) },
        .init("region_bucket", .text) { r, e in e.text(r.regionBucket) },
        .init("resource_type", .text) { r, e in e.text(r.resourceType) },
        .init("scenario", .text) { r, e in e.text(r.scenario) },
        .init("confidence", .text) { r, e in e.text(r.confidence.rawValue) },
        .init("estimated_monthly_cost", .float8) { r, e in e.float8(r.estimatedMonthlyCost) },
        .init("currency", .text) { r, e in e.currency(r.currency) },
        .init("resource_age_days", .int4) { r, e in e.int4(r.resourceAgeDays) },
        .init("created_hour_utc", .int2) { r, e in e.int2(r.createdHourUTC) },
        .init("created_dow", .int2) { r, e in e.int2(r.createdDOW) },
        .init("metrics", .jsonb) { r, e in MetricsJSON.withText(r.metrics) { e.jsonb(text: $0) } },
        .init("tag_keys", .textArray) { r, e in r.tagKeys.elements.withUnsafeBytes { e.textArray(count: r.tagKeys.count, elements: $0) } },
        .init("env_class", .text) { r, e in e.text(r.envClass) },
        .init("parent_hash", .bytea) { r, e in e.pseudonym(r.parentHash) },
        .init("detected_at", .timestamptz) { r, e in e.timestamptz(unixMicros: r.detectedAt.micros) },
    ])
}
