import CloudWastePostgres

extension TableDescription where Row == BilledCostRow {
    /// resource_billed_costs: what billing reported per resource, day and cost type. Billing data
    /// is restated (a day comes again with a corrected amount), so a row is replaced only by a
    /// record from a later source position: a restated day converges to the latest record, and a
    /// redelivered older record never undoes a newer one.
    public static let resourceBilledCosts = TableDescription(
        name: "resource_billed_costs", key: ["resource_hash", "usage_date", "cost_type"],
        columns: [
            .init("resource_hash", .bytea) { r, e in e.pseudonym(r.resourceHash) },
            .init("usage_date", .date) { r, e in e.date(unixDays: r.usageDate.unixDays) },
            .init("cost_type", .text) { r, e in e.text(r.costType.rawValue) },
            .init("account_hash", .bytea) { r, e in e.pseudonym(r.accountHash) },
            .init("event_hash", .bytea) { r, e in e.pseudonym(r.eventHash) },
            .init("provider", .text) { r, e in e.text(r.provider.rawValue) },
            .init("currency", .text) { r, e in e.currency(r.currency) },
            .init("amount", .float8) { r, e in e.float8(r.amount) },
            .init("source", .text) { r, e in e.text(r.source) },
        ],
        updateCondition: "(EXCLUDED.source_partition, EXCLUDED.source_offset) >= (t.source_partition, t.source_offset)")
}
