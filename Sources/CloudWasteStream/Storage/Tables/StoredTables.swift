extension StoredTable {
    /// Every table of the schema, in the order exports, retention and stats go through them.
    public static let all: [StoredTable] = [
        StoredTable(copiedBy: TableDescription.mlTrainingData, eventTime: .instant("detected_at"), retention: .cleaned, exported: true,
                    replay: .rebuilt(from: [.scanResources]), erasure: .init(touchesMonths: true)),
        StoredTable(copiedBy: TableDescription.userActionPatterns, eventTime: .instant("action_at"), retention: .cleaned, exported: true,
                    replay: .rebuilt(from: [.userActions]), erasure: .init(touchesMonths: true)),
        StoredTable(copiedBy: TableDescription.resourceLifecycleEvents, eventTime: .instant("occurred_at"), retention: .cleaned,
                    exported: true, replay: .rebuilt(from: [.resourceLifecycle])),
        StoredTable(copiedBy: TableDescription.cloudwatchMetricsHistory, eventTime: .instant("ts"), retention: .cleaned, exported: true,
                    replay: .rebuilt(from: [.metricSamples])),
        StoredTable(copiedBy: TableDescription.resourceBilledCosts, eventTime: .day("usage_date"), retention: .followsCostTrends,
                    exported: true, replay: .rebuilt(from: [.billedCosts])),
        StoredTable("cost_trend_data", columns: [
            "account_hash", "month", "currency", "provider", "resources_detected", "waste_detected_monthly_cost", "resources_eliminated",
            "waste_eliminated_monthly_cost", "top_categories", "billed_resources", "billed_waste_monthly_cost", "late_records", "revision",
            "finalized", "updated_at", "emitted_revision", "key_id",
        ], key: ["account_hash", "month", "currency"], eventTime: .month("month"), storedAt: "updated_at", retention: .cleaned,
           exported: true, replay: .rebuilt(from: [.scanResources, .userActions, .billedCosts])),
        StoredTable("user_preferences", columns: ["user_hash", "consent", "updated_at", "erased_at", "key_id"], key: ["user_hash"],
                    eventTime: .instant("updated_at"), storedAt: "updated_at", exported: true, replay: .rebuilt(from: [.privacyRequests])),
        StoredTable("consent_events", columns: ["user_hash", "effective_at", "event_hash", "consent"],
                    key: ["user_hash", "effective_at", "event_hash"], replay: .rebuilt(from: [.privacyRequests]),
                    erasure: .init(touchesMonths: false)),
        StoredTable("erasures", columns: ["user_hash", "erased_at", "recorded_at", "deleted_rows", "source"], key: ["user_hash"]),
        StoredTable("window_resource_costs", columns: [
            "account_hash", "month", "resource_hash", "currency", "user_hash", "provider", "resource_type", "cost", "detected_at",
            "source_partition", "source_offset",
        ], key: ["account_hash", "month", "resource_hash", "currency", "user_hash"], eventTime: .month("month"),
           retention: .followsCostTrends, replay: .rebuilt(from: [.scanResources]), erasure: .init(touchesMonths: true)),
        StoredTable("window_eliminations", columns: [
            "account_hash", "month", "resource_hash", "currency", "user_hash", "provider", "cost_saved", "action_at",
            "source_partition", "source_offset",
        ], key: ["account_hash", "month", "resource_hash", "currency", "user_hash"], eventTime: .month("month"),
           retention: .followsCostTrends, replay: .rebuilt(from: [.userActions]), erasure: .init(touchesMonths: true)),
        StoredTable("window_dirty_months", columns: ["account_hash", "month", "currency", "records"], key: [],
                    replay: .rebuilt(from: [.scanResources, .userActions, .billedCosts])),
        StoredTable(copiedBy: TableDescription.deadLetters, laterColumns: [
            "received_at", "redriven_at", "published_at", "send_from_partitions", "send_from_offsets",
        ], eventTime: .instant("received_at"), storedAt: "received_at", retention: .cleaned, exported: false, replay: .kept),
        StoredTable("stream_offsets", columns: [
            "consumer_group", "topic", "partition", "next_offset", "generation", "owner", "max_event_time", "last_record_at", "updated_at",
        ], key: ["consumer_group", "topic", "partition"]),
        StoredTable("schedule_runs", columns: ["schedule", "last_fire", "finished_at", "detail"], key: ["schedule"]),
        StoredTable("schema_migrations", columns: ["version", "name", "applied_at"], key: ["version"]),
        StoredTable("legacy_trend_keys", columns: ["key"], key: ["key"]),
    ]

    /// The tables `export` can write, in the order it writes them when none are named.
    public static var exported: [StoredTable] { all.filter(\.exported) }
    /// The tables `retention` cleans, in the order it cleans them.
    public static var cleaned: [StoredTable] { all.filter { $0.retention != .kept } }
    /// The tables `replay` rebuilds in the shadow schema and swaps in.
    public static var swapped: [StoredTable] { all.filter { $0.replay != .kept } }
    /// The tables whose rows of a user an erasure deletes.
    public static var erased: [StoredTable] { all.filter { $0.erasure != nil } }
    /// The tables `stats` counts.
    public static var counted: [StoredTable] { all.filter { $0.storedAt != nil } }
}
