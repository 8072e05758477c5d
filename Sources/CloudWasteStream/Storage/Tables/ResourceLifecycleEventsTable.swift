import CloudWastePostgres

extension TableDescription where Row == LifecycleRow {
    /// resource_lifecycle_events: resources changing state, one row per event.
    public static let resourceLifecycleEvents = TableDescription(name: "resource_lifecycle_events", key: ["event_hash"], columns: [
        .init("event_hash", .bytea) { r, e in e.pseudonym(r.eventHash) },
        .init("account_hash", .bytea) { r, e in e.pseudonym(r.accountHash) },
        .init("resource_hash", .bytea) { r, e in e.pseudonym(r.resourceHash) },
        .init("provider", .text) { r, e in e.text(r.provider.rawValue) },
        .init("resource_type", .text) { r, e in e.text(r.resourceType) },
        .init("from_state", .text) { r, e in e.text(r.fromState) },
        .init("to_state", .text) { r, e in e.text(r.toState) },
        .init("occurred_at", .timestamptz) { r, e in e.timestamptz(unixMicros: r.occurredAt.micros) },
    ])
}
