import CloudWastePostgres

extension TableDescription where Row == ActionRow {
    /// user_action_patterns: what users did about findings, one row per action event.
    public static let userActionPatterns = TableDescription(name: "user_action_patterns", key: ["event_hash"], columns: [
        .init("event_hash", .bytea) { r, e in e.pseudonym(r.eventHash) },
        .init("user_hash", .bytea) { r, e in e.pseudonym(r.userHash) },
        .init("account_hash", .bytea) { r, e in e.pseudonym(r.accountHash) },
        .init("resource_hash", .bytea) { r, e in e.pseudonym(r.resourceHash) },
        .init("provider", .text) { r, e in e.text(r.provider.rawValue) },
        .init("resource_type", .text) { r, e in e.text(r.resourceType) },
        .init("action", .text) { r, e in e.text(r.action.rawValue) },
        .init("detected_at", .timestamptz) { r, e in e.timestamptz(unixMicros: r.detectedAt.micros) },
        .init("action_at", .timestamptz) { r, e in e.timestamptz(unixMicros: r.actionAt.micros) },
        .init("time_to_action_hours", .float8) { r, e in e.float8(r.timeToActionHours) },
        .init("cost_saved_monthly", .float8) { r, e in e.float8(r.costSavedMonthly) },
        .init("currency", .text) { r, e in e.currency(r.currency) },
    ])
}
