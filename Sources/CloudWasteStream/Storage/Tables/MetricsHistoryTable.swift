import CloudWastePostgres

extension TableDescription where Row == SourcedRow<MetricPointRow> {
    /// cloudwatch_metrics_history: one row per resource, metric and point in time.
    public static let cloudwatchMetricsHistory = TableDescription(name: "cloudwatch_metrics_history", key: ["resource_hash", "metric", "ts"], columns: [
        .init("resource_hash", .bytea) { r, e in e.pseudonym(r.row.resourceHash) },
        .init("metric", .text) { r, e in e.text(r.row.metric) },
        .init("ts", .timestamptz) { r, e in e.timestamptz(unixMicros: r.row.ts.micros) },
        .init("account_hash", .bytea) { r, e in e.pseudonym(r.row.accountHash) },
        .init("provider", .text) { r, e in e.text(r.row.provider.rawValue) },
        .init("unit", .text) { r, e in e.text(r.row.unit) },
        .init("value", .float8) { r, e in e.float8(r.row.value) },
        .init("key_id", .text) { r, e in e.text(r.keyId) },
        .init("source_topic", .text) { r, e in e.text(r.source.topic) },
        .init("source_partition", .int4) { r, e in e.int4(Int(r.source.partition)) },
        .init("source_offset", .int8) { r, e in e.int8(r.source.offset) },
    ])
}
