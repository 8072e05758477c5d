import CloudWastePostgres

extension TableDescription where Row == SourcedRow<BilledCostRow> {
    /// resource_billed_costs: what billing reported per resource, day and cost type. Billing data
    /// is restated (a day comes again with a corrected amount), so a row is replaced only by a
    /// record from a later source position: a restated day converges to the latest record, and a
    /// redelivered older record never undoes a newer one.
    public static let resourceBilledCosts = TableDescription(
        name: "resource_billed_costs", key: ["resource_hash", "usage_date", "cost_type"],
        columns: [
            .init("resource_hash", .bytea) { r, e in e.pseudonym(r.row.resourceHash) },
            .init("usage_date", .date) { r, e in e.date(unixDays: r.row.usageDate.unixDays) },
            .init("cost_type", .text) { r, e in e.text(r.row.costType.rawValue) },
            .init("account_hash", .bytea) { r, e in e.pseudonym(r.row.accountHash) },
            .init("event_hash", .bytea) { r, e in e.pseudonym(r.row.eventHash) },
            .init("provider", .text) { r, e in e.text(r.row.provider.rawValue) },
            .init("currency", .text) { r, e in e.text(r.row.currency) },
            .init("amount", .float8) { r, e in e.float8(r.row.amount) },
            .init("source", .text) { r, e in e.text(r.row.source) },
            .init("key_id", .text) { r, e in e.text(r.keyId) },
            .init("source_topic", .text) { r, e in e.text(r.source.topic) },
            .init("source_partition", .int4) { r, e in e.int4(Int(r.source.partition)) },
            .init("source_offset", .int8) { r, e in e.int8(r.source.offset) },
        ],
        updateCondition: "(EXCLUDED.source_partition, EXCLUDED.source_offset) >= (t.source_partition, t.source_offset)")
}
