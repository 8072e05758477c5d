import CloudWastePostgres

extension TableDescription where Row == MetricPointRow {
    /// cloudwatch_metrics_history: one row per resource, metric and point in time.
    public static let cloudwatchMetricsHistory = TableDescription(name: "cloudwatch_metrics_history", key: ["resource_hash", "metric", "ts"], columns: [
        .init("resource_hash", .bytea) { r, e in e.pseudonym(r.resourceHash) },
        .init("metric", .text) { r, e in e.text(r.metric) },
        .init("ts", .timestamptz) { r, e in e.timestamptz(unixMicros: r.ts.micros) },
        .init("account_hash", .bytea) { r, e in e.pseudonym(r.accountHash) },
        .init("provider", .text) { r, e in e.text(r.provider.rawValue) },
        .init("unit", .text) { r, e in e.text(r.unit) },
        .init("value", .float8) { r, e in e.float8(r.value) },
    ])
}
