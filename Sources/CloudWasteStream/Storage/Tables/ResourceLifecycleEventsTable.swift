import CloudWastePostgres

extension TableDescription where Row == SourcedRow<LifecycleRow> {
    /// resource_lifecycle_events: resources changing state, one row per event.
    public static let resourceLifecycleEvents = TableDescription(name: "resource_lifecycle_events", key: ["event_hash"], columns: [
        .init("event_hash", .bytea) { r, e in e.pseudonym(r.row.eventHash) },
        .init("account_hash", .bytea) { r, e in e.pseudonym(r.row.accountHash) },
        .init("resource_hash", .bytea) { r, e in e.pseudonym(r.row.resourceHash) },
        .init("provider", .text) { r, e in e.text(r.row.provider.rawValue) },
        .init("resource_type", .text) { r, e in e.text(r.row.resourceType) },
        .init("from_state", .text) { r, e in e.text(r.row.fromState) },
        .init("to_state", .text) { r, e in e.text(r.row.toState) },
        .init("occurred_at", .timestamptz) { r, e in e.timestamptz(unixMicros: r.row.occurredAt.micros) },
        .init("key_id", .text) { r, e in e.text(r.keyId) },
        .init("source_topic", .text) { r, e in e.text(r.source.topic) },
        .init("source_partition", .int4) { r, e in e.int4(Int(r.source.partition)) },
        .init("source_offset", .int8) { r, e in e.int8(r.source.offset) },
    ])
}
