import CloudWastePostgres

extension TableDescription where Row == SourcedRow<ActionRow> {
    /// user_action_patterns: what users did about findings, one row per action event.
    public static let userActionPatterns = TableDescription(name: "user_action_patterns", key: ["event_hash"], columns: [
        .init("event_hash", .bytea) { r, e in e.pseudonym(r.row.eventHash) },
        .init("user_hash", .bytea) { r, e in e.pseudonym(r.row.userHash) },
        .init("account_hash", .bytea) { r, e in e.pseudonym(r.row.accountHash) },
        .init("resource_hash", .bytea) { r, e in e.pseudonym(r.row.resourceHash) },
        .init("provider", .text) { r, e in e.text(r.row.provider.rawValue) },
        .init("resource_type", .text) { r, e in e.text(r.row.resourceType) },
        .init("action", .text) { r, e in e.text(r.row.action.rawValue) },
        .init("detected_at", .timestamptz) { r, e in e.timestamptz(unixMicros: r.row.detectedAt.micros) },
        .init("action_at", .timestamptz) { r, e in e.timestamptz(unixMicros: r.row.actionAt.micros) },
        .init("time_to_action_hours", .float8) { r, e in e.float8(r.row.timeToActionHours) },
        .init("cost_saved_monthly", .float8) { r, e in e.float8(r.row.costSavedMonthly) },
        .init("currency", .text) { r, e in e.text(r.row.currency) },
        .init("key_id", .text) { r, e in e.text(r.keyId) },
        .init("source_topic", .text) { r, e in e.text(r.source.topic) },
        .init("source_partition", .int4) { r, e in e.int4(Int(r.source.partition)) },
        .init("source_offset", .int8) { r, e in e.int8(r.source.offset) },
    ])
}
