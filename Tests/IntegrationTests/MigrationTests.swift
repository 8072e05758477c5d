import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// Schema changes applied to tables that already hold rows, as an upgrade meets them.
@Suite(.serialized) struct MigrationTests {
    /// A database at `version`, migrated step by step as the releases before would have done.
    static func database(atVersion version: Int) async throws -> PostgresConnection {
        let db = try PostgresConnection(connectionString: try await TestPostgres.newDatabase("migrate"))
        try db.execute("""
            CREATE TABLE public.schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
            """)
        for m in Migrator.migrations where m.version <= version {
            try db.execute(m.sql.replacingOccurrences(of: "{s}", with: "\"public\""))
            try db.query("INSERT INTO schema_migrations (version, name) VALUES (\(m.version), \(m.name))")
        }
        return db
    }

    /// Version 5 keys cost trends by currency. Before it, account B's month added an EUR resource
    /// and a USD one into one figure; after the migration and one recompute, B has one row per
    /// currency, and A (USD only) keeps its row untouched.
    @Test func moneyPerCurrencySplitsMonthsThatMixedCurrencies() async throws {
        let db = try await Self.database(atVersion: 4)
        for (account, resource, cost, currency, offset) in [("A", "a1", 10.0, "USD", 1), ("B", "b1", 10.0, "EUR", 2), ("B", "b2", 20.0, "USD", 3)] {
            try db.query("""
                INSERT INTO ml_training_data (scan_hash, resource_hash, account_hash, user_hash, event_hash, provider, region_bucket,
                    resource_type, scenario, confidence, estimated_monthly_cost, currency, metrics, tag_keys, detected_at, key_id,
                    source_topic, source_partition, source_offset)
                VALUES ('s', \(resource), \(account), 'u', 'e', 'azure', 'eu-*', 'managed_disk', 'idle', 'high', \(cost), \(currency),
                        '{}', '{}', '2026-03-10T00:00:00Z', 'k', 'cloudwaste.scan-resources.v1', 0, \(offset))
                """)
            try db.query("""
                INSERT INTO window_resource_costs (account_hash, month, resource_hash, user_hash, provider, resource_type, cost,
                    detected_at, source_partition, source_offset)
                VALUES (\(account), '2026-03-01', \(resource), 'u', 'azure', 'managed_disk', \(cost), '2026-03-10T00:00:00Z', 0, \(offset))
                """)
        }
        try db.execute("""
            INSERT INTO cost_trend_data (account_hash, month, provider, resources_detected, waste_detected_monthly_cost,
                resources_eliminated, waste_eliminated_monthly_cost, top_categories, revision, emitted_revision, key_id)
            VALUES ('A', '2026-03-01', 'azure', 1, 10, 0, 0, '[]', 4, 4, 'k'), ('B', '2026-03-01', 'azure', 2, 30, 0, 0, '[]', 7, 7, 'k')
            """)
        #expect(try Migrator(schema: "public").migrate(db) == [5, 6, 7])
        let migrated = try db.execute("SELECT account_hash, currency, waste_detected_monthly_cost::text, billed_waste_monthly_cost::text FROM cost_trend_data ORDER BY 1")
        #expect(migrated.rows == [["A", "USD", "10.0000", "0.0000"], ["B", "USD", "30.0000", "0.0000"]])
        #expect(try db.execute("SELECT resource_hash, currency FROM window_resource_costs ORDER BY 1").rows == [["a1", "USD"], ["b1", "EUR"], ["b2", "USD"]])
        #expect(try db.execute("SELECT DISTINCT account_hash FROM window_dirty_months").rows == [["B"]])
        #expect(try db.execute("SELECT count(*) FROM user_action_patterns WHERE currency <> 'USD'").int(0, 0) == 0)
        // Both rows were published under account_hash:month: those keys get a tombstone, and every
        // row goes out again under its new key.
        #expect(try db.execute("SELECT key FROM legacy_trend_keys ORDER BY 1").rows == [["A:2026-03-01"], ["B:2026-03-01"]])
        #expect(try db.execute("SELECT count(*) FROM cost_trend_data WHERE emitted_revision > 0").int(0, 0) == 0)

        var config = StreamConfig()
        config.postgresSchema = "public"
        let windows = CostTrendWindows(connection: db, settings: .init(config: config))
        let recomputed = try #require(try windows.recompute(keyId: "k", wait: true))
        #expect(Set(recomputed.emissions.map(\.key)) == ["B:2026-03-01:USD", "B:2026-03-01:EUR"])
        let rows = try db.execute("SELECT account_hash, currency, resources_detected, waste_detected_monthly_cost::text, revision FROM cost_trend_data ORDER BY 1, 2")
        #expect(rows.rows == [["A", "USD", "1", "10.0000", "4"], ["B", "EUR", "1", "10.0000", "1"], ["B", "USD", "1", "20.0000", "8"]])
        #expect(try db.execute("SELECT count(*) FROM window_dirty_months").int(0, 0) == 0)

        let env = try await TestEnvironment()
        let topic = "cloudwaste.cost-trends.v1"
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": env.kafka.bootstrapServers]), logger: testLogger("test.migrate"))
        let publisher = TrendPublisher(producer: producer, windows: windows, topic: topic)
        #expect(try publisher.retireLegacyKeys() == 2)
        #expect(try publisher.retireLegacyKeys() == 0)  // once
        try publisher.publish(try windows.unpublishedTrends())
        #expect(try windows.unpublishedTrends().isEmpty)
        let published = try env.readTopic(topic, idleMs: 1500).map { (String(decoding: $0.key ?? [], as: UTF8.self), $0.value == nil) }
        #expect(published.filter(\.1).map(\.0).sorted() == ["A:2026-03-01", "B:2026-03-01"])
        #expect(published.filter { !$0.1 }.map(\.0).sorted() == ["A:2026-03-01:USD", "B:2026-03-01:EUR", "B:2026-03-01:USD"])
    }

    /// Version 6 keeps the window state per user. Before it, resource r1 of account A held only
    /// user X's detection (the latest); the migration adds user Y's from ml_training_data (and
    /// Y's saving from user_action_patterns), for months the state holds only, so erasing X then
    /// leaves Y's figures, which the correction finds without reading other users' fact rows.
    @Test func windowStatePerUserAddsTheOtherUsersLatestRows() async throws {
        let db = try await Self.database(atVersion: 5)
        for (account, user, cost, day, offset) in [("A", "X", 30.0, "10", 3), ("A", "Y", 10.0, "05", 2), ("A", "Y", 12.0, "02", 1),
                                                   ("C", "Y", 5.0, "05", 4)] {
            try db.query("""
                INSERT INTO ml_training_data (scan_hash, resource_hash, account_hash, user_hash, event_hash, provider, region_bucket,
                    resource_type, scenario, confidence, estimated_monthly_cost, currency, metrics, tag_keys, detected_at, key_id,
                    source_topic, source_partition, source_offset)
                VALUES (\("s\(offset)"), 'r1', \(account), \(user), 'e', 'aws', 'eu-*', 'ebs_volume', 'idle', 'high', \(cost), 'USD',
                        '{}', '{}', \("2026-03-\(day)T00:00:00Z")::timestamptz, 'k', 'cloudwaste.scan-resources.v1', 0, \(offset))
                """)
        }
        for (user, saved, day, offset) in [("X", 30.0, "11", 6), ("Y", 10.0, "06", 5)] {
            try db.query("""
                INSERT INTO user_action_patterns (event_hash, user_hash, account_hash, resource_hash, provider, resource_type, action,
                    detected_at, action_at, time_to_action_hours, cost_saved_monthly, key_id, source_topic, source_partition, source_offset)
                VALUES (\("a\(offset)"), \(user), 'A', 'r1', 'aws', 'ebs_volume', 'deleted', '2026-03-01T00:00:00Z',
                        \("2026-03-\(day)T00:00:00Z")::timestamptz, 1, \(saved), 'k', 'cloudwaste.user-actions.v1', 0, \(offset))
                """)
        }
        // The old state: the latest of all users per resource, for account A only (C's month was
        // never aggregated, e.g. with windows off).
        try db.execute("""
            INSERT INTO window_resource_costs (account_hash, month, resource_hash, currency, user_hash, provider, resource_type, cost,
                detected_at, source_partition, source_offset)
            VALUES ('A', '2026-03-01', 'r1', 'USD', 'X', 'aws', 'ebs_volume', 30, '2026-03-10T00:00:00Z', 0, 3);
            INSERT INTO window_eliminations (account_hash, month, resource_hash, currency, user_hash, provider, cost_saved, action_at,
                source_partition, source_offset)
            VALUES ('A', '2026-03-01', 'r1', 'USD', 'X', 'aws', 30, '2026-03-11T00:00:00Z', 0, 6);
            """)
        #expect(try Migrator(schema: "public").migrate(db) == [6, 7])
        #expect(try db.execute("SELECT account_hash, user_hash, cost::text, source_offset FROM window_resource_costs ORDER BY 1, 2").rows
            == [["A", "X", "30.0000", "3"], ["A", "Y", "10.0000", "2"]])
        #expect(try db.execute("SELECT user_hash, cost_saved::text FROM window_eliminations ORDER BY 1").rows
            == [["X", "30.0000"], ["Y", "10.0000"]])

        var config = StreamConfig()
        config.postgresSchema = "public"
        let windows = CostTrendWindows(connection: db, settings: .init(config: config))
        try db.execute("INSERT INTO window_dirty_months (account_hash, month, currency, records) VALUES ('A', '2026-03-01', 'USD', 0)")
        _ = try windows.recompute(keyId: "k", wait: true)
        let trend = "SELECT resources_detected, waste_detected_monthly_cost::text, resources_eliminated, waste_eliminated_monthly_cost::text FROM cost_trend_data WHERE account_hash = 'A'"
        #expect(try db.execute(trend).rows == [["1", "30.0000", "1", "30.0000"]])  // the latest of all users
        let privacy = PrivacyRequests(connection: db, schema: "public", consentMode: .optOut, windowsEnabled: true)
        _ = try privacy.forget(userHash: "X", keyId: "k")
        _ = try windows.recompute(keyId: "k", wait: true)
        #expect(try db.execute(trend).rows == [["1", "10.0000", "1", "10.0000"]])  // Y's, now the latest left
    }
}
