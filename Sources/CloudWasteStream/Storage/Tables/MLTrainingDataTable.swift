import CloudWastePostgres

extension TableDescription where Row == SourcedRow<TrainingRow> {
    /// ml_training_data: one row per resource per scan, keyed by (scan_hash, resource_hash).
    public static let mlTrainingData = TableDescription(name: "ml_training_data", key: ["scan_hash", "resource_hash"], columns: [
        .init("scan_hash", .bytea) { r, e in e.pseudonym(r.row.scanHash) },
        .init("resource_hash", .bytea) { r, e in e.pseudonym(r.row.resourceHash) },
        .init("account_hash", .bytea) { r, e in e.pseudonym(r.row.accountHash) },
        .init("user_hash", .bytea) { r, e in e.pseudonym(r.row.userHash) },
        .init("event_hash", .bytea) { r, e in e.pseudonym(r.row.eventHash) },
        .init("provider", .text) { r, e in e.text(r.row.provider.rawValue) },
        .init("region_bucket", .text) { r, e in e.text(r.row.regionBucket) },
        .init("resource_type", .text) { r, e in e.text(r.row.resourceType) },
        .init("scenario", .text) { r, e in e.text(r.row.scenario) },
        .init("confidence", .text) { r, e in e.text(r.row.confidence) },
        .init("estimated_monthly_cost", .float8) { r, e in e.float8(r.row.estimatedMonthlyCost) },
        .init("currency", .text) { r, e in e.text(r.row.currency) },
        .init("resource_age_days", .int4) { r, e in e.int4(r.row.resourceAgeDays) },
        .init("created_hour_utc", .int2) { r, e in e.int2(r.row.createdHourUTC) },
        .init("created_dow", .int2) { r, e in e.int2(r.row.createdDOW) },
        .init("metrics", .jsonb) { r, e in e.jsonb { MetricsJSON.write(r.row.metrics, into: &$0) } },
        .init("tag_keys", .textArray) { r, e in e.textArray(r.row.tagKeys) },
        .init("env_class", .text) { r, e in e.text(r.row.envClass) },
        .init("parent_hash", .bytea) { r, e in e.pseudonym(r.row.parentHash) },
        .init("detected_at", .timestamptz) { r, e in e.timestamptz(unixMicros: r.row.detectedAt.micros) },
        .init("key_id", .text) { r, e in e.text(r.keyId) },
        .init("source_topic", .text) { r, e in e.text(r.source.topic) },
        .init("source_partition", .int4) { r, e in e.int4(Int(r.source.partition)) },
        .init("source_offset", .int8) { r, e in e.int8(r.source.offset) },
    ])
}
