import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// The table registry (`StoredTable.all`) and the COPY descriptions against the schema the
/// migrations make: every table, every column, every key, and the types the program relies on.
struct StoredTableTests {
    @Test func theRegistryMatchesTheMigratedSchema() async throws {
        let db = try PostgresConnection(connectionString: try await TestPostgres.newDatabase("registry"))
        try Migrator(schema: "public").migrate(db)
        let tables = try db.query("""
            SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') ORDER BY 1
            """).decodeColumn(as: String.self)
        #expect(tables == StoredTable.all.map(\.name).sorted())

        for table in StoredTable.all {
            let columns = Dictionary(uniqueKeysWithValues: try db.query("""
                SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                 WHERE a.attrelid = \(PostgresIdentifier("public").member(table.name).sql)::regclass AND a.attnum > 0 AND NOT a.attisdropped
                """).decodeRows(as: (String, String).self).map { ($0, $1) })
            #expect(Set(columns.keys) == Set(table.columns), "columns of \(table)")
            #expect(table.columns.count == Set(table.columns).count, "\(table) lists a column twice")
            let key = try db.query("""
                SELECT a.attname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
                 WHERE c.conrelid = \(PostgresIdentifier("public").member(table.name).sql)::regclass AND c.contype = 'p'
                 ORDER BY array_position(c.conkey, a.attnum)
                """).decodeColumn(as: String.self)
            #expect(key == table.key, "key of \(table)")
            if let time = table.eventTime {
                #expect(columns[time.name] == (time.kind == .instant ? "timestamp with time zone" : "date"), "\(table).\(time.name)")
            }
            if let stored = table.storedAt { #expect(columns[stored] == "timestamp with time zone", "\(table).\(stored)") }
            if table.erasure != nil { #expect(columns["user_hash"] == "bytea", "\(table) is erased by user_hash") }
            if table.retention != .kept { #expect(table.eventTime != nil, "\(table) is cleaned by its event time") }
            if table.exported { #expect(table.eventTime != nil, "\(table) is exported by its event time") }
        }

        let sqlName: [PostgresColumnType: String] = [
            .text: "text", .float8: "double precision", .int2: "smallint", .int4: "integer", .int8: "bigint", .bool: "boolean",
            .date: "date", .timestamptz: "timestamp with time zone", .jsonb: "jsonb", .textArray: "text[]", .bytea: "bytea",
        ]
        func check<Row>(_ d: TableDescription<Row>) throws {
            let actual = Dictionary(uniqueKeysWithValues: try db.query("""
                SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                 WHERE a.attrelid = ('public.' || \(d.name))::regclass AND a.attnum > 0 AND NOT a.attisdropped
                """).decodeRows(as: (String, String).self).map { ($0, $1) })
            for c in d.storedColumns { #expect(actual[c.name] == sqlName[c.type], "\(d.name).\(c.name)") }
        }
        try check(TableDescription.mlTrainingData)
        try check(TableDescription.userActionPatterns)
        try check(TableDescription.resourceLifecycleEvents)
        try check(TableDescription.cloudwatchMetricsHistory)
        try check(TableDescription.resourceBilledCosts)
        try check(TableDescription.deadLetters)
    }

    /// What each command derives from the registry: the lists its documentation names.
    @Test func eachCommandsTablesComeFromTheRegistry() {
        #expect(Exporter.defaultTableOrder == ["ml_training_data", "user_action_patterns", "resource_lifecycle_events",
                                               "cloudwatch_metrics_history", "resource_billed_costs", "cost_trend_data", "user_preferences"])
        #expect(RetentionCleaner.tables.map(\.name) == ["ml_training_data", "user_action_patterns", "resource_lifecycle_events",
                                                       "cloudwatch_metrics_history", "resource_billed_costs", "cost_trend_data",
                                                       "window_resource_costs", "window_eliminations", "dead_letters"])
        #expect(Set(Replayer.swappedTables) == ["ml_training_data", "user_action_patterns", "resource_lifecycle_events",
                                                "cloudwatch_metrics_history", "resource_billed_costs", "user_preferences", "consent_events",
                                                "cost_trend_data", "window_resource_costs", "window_eliminations", "window_dirty_months"])
        #expect(StoredTable.erased.map(\.name) == ["ml_training_data", "user_action_patterns", "consent_events",
                                                  "window_resource_costs", "window_eliminations"])
        // Consent decisions, erasures and the daemon's own state are never cleaned or replayed away.
        for name in ["user_preferences", "consent_events", "erasures", "stream_offsets", "schema_migrations", "schedule_runs"] {
            #expect(StoredTable.named(name)?.retention == .kept, "\(name)")
        }
        #expect(StoredTable.named("erasures")?.replay == .kept)
        let scanTables = StoredTable.swapped.filter { $0.isRebuilt(byAnyOf: [.scanResources]) }.map(\.name)
        #expect(scanTables == ["ml_training_data", "cost_trend_data", "window_resource_costs", "window_dirty_months"])
    }
}
