import CloudWasteDevTools
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
        try db.query("""
            CREATE TABLE public.schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
            """)
        for m in Migrator.migrations where m.version <= version {
            try db.query(Migrator(schema: "public").sql(of: m))
            try db.query("INSERT INTO schema_migrations (version, name) VALUES (\(m.version), \(m.name))")
        }
        return db
    }

    /// Result rows with every stored stand-in pseudonym (`\x…`, 32 bytes) shown as its label.
    static func labelled(_ rows: [[String?]]) -> [[String?]] {
        rows.map { $0.map { v in v.map { $0.hasPrefix("\\x") && $0.count == 66 ? TestPseudonym.label($0) : $0 } } }
    }

    /// Version 5 keys cost trends by currency. Before it, account B's month added an EUR resource
    /// and a USD one into one figure; after the migration and one recompute, B has one row per
    /// currency, and A (USD only) keeps its row untouched.
    @Test func moneyPerCurrencySplitsMonthsThatMixedCurrencies() async throws {
        let db = try await Self.database(atVersion: 4)
        let h = TestPseudonym.hex
        for (account, resource, cost, currency, offset) in [(h("A"), h("a1"), 10.0, "USD", 1), (h("B"), h("b1"), 10.0, "EUR", 2),
                                                             (h("B"), h("b2"), 20.0, "USD", 3)] {
            try db.query("""
                INSERT INTO ml_training_data (scan_hash, resource_hash, account_hash, user_hash, event_hash, provider, region_bucket,
                    resource_type, scenario, confidence, estimated_monthly_cost, currency, metrics, tag_keys, detected_at, key_id,
                    source_topic, source_partition, source_offset)
                VALUES (\(h("s\(offset)")), \(resource), \(account), \(h("u")), \(h("e")), 'azure', 'eu-*', 'managed_disk', 'idle', 'high', \(cost), \(currency),
                        '{}', '{}', '2026-03-10T00:00:00Z', 'k', 'cloudwaste.scan-resources.v1', 0, \(offset))
                """)
            try db.query("""
                INSERT INTO window_resource_costs (account_hash, month, resource_hash, user_hash, provider, resource_type, cost,
                    detected_at, source_partition, source_offset)
                VALUES (\(account), '2026-03-01', \(resource), \(h("u")), 'azure', 'managed_disk', \(cost), '2026-03-10T00:00:00Z', 0, \(offset))
                """)
        }
        try db.query("""
            INSERT INTO cost_trend_data (account_hash, month, provider, resources_detected, waste_detected_monthly_cost,
                resources_eliminated, waste_eliminated_monthly_cost, top_categories, revision, emitted_revision, key_id)
            VALUES (\(h("A")), '2026-03-01', 'azure', 1, 10, 0, 0, '[]', 4, 4, 'k'), (\(h("B")), '2026-03-01', 'azure', 2, 30, 0, 0, '[]', 7, 7, 'k')
            """)
        #expect(try Migrator(schema: "public").migrate(db) == [5, 6, 7, 8])
        let migrated = try db.query("SELECT account_hash, currency, waste_detected_monthly_cost::text, billed_waste_monthly_cost::text FROM cost_trend_data ORDER BY 1")
        #expect(Self.labelled(migrated.rows) == [["A", "USD", "10.0000", "0.0000"], ["B", "USD", "30.0000", "0.0000"]])
        #expect(Self.labelled(try db.query("SELECT resource_hash, currency FROM window_resource_costs ORDER BY 1").rows)
            == [["a1", "USD"], ["b1", "EUR"], ["b2", "USD"]])
        #expect(Self.labelled(try db.query("SELECT DISTINCT account_hash FROM window_dirty_months").rows) == [["B"]])
        #expect(try db.query("SELECT count(*) FROM user_action_patterns WHERE currency <> 'USD'").decode(Int.self) == 0)
        // Both rows were published under account_hash:month: those keys get a tombstone, and every
        // row goes out again under its new key.
        #expect(try db.query("SELECT key FROM legacy_trend_keys ORDER BY 1").rows == [["\(h("A")):2026-03-01"], ["\(h("B")):2026-03-01"]])
        #expect(try db.query("SELECT count(*) FROM cost_trend_data WHERE emitted_revision > 0").decode(Int.self) == 0)

        var config = StreamConfig()
        config.postgresSchema = "public"
        let windows = CostTrendWindows(connection: db, settings: .init(config: config))
        let recomputed = try #require(try windows.recompute(keyId: "k", wait: true))
        #expect(Set(recomputed.emissions.map(\.key)) == ["\(h("B")):2026-03-01:USD", "\(h("B")):2026-03-01:EUR"])
        let rows = try db.query("SELECT account_hash, currency, resources_detected, waste_detected_monthly_cost::text, revision FROM cost_trend_data ORDER BY 1, 2")
        #expect(Self.labelled(rows.rows) == [["A", "USD", "1", "10.0000", "4"], ["B", "EUR", "1", "10.0000", "1"], ["B", "USD", "1", "20.0000", "8"]])
        #expect(try db.query("SELECT count(*) FROM window_dirty_months").decode(Int.self) == 0)

        let env = try await TestEnvironment()
        let topic = "cloudwaste.cost-trends.v1"
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": env.kafka.bootstrapServers]), logger: testLogger("test.migrate"))
        let publisher = TrendPublisher(producer: producer, windows: windows, topic: topic)
        #expect(try publisher.retireLegacyKeys() == 2)
        #expect(try publisher.retireLegacyKeys() == 0)  // once
        try publisher.publish(try windows.unpublishedTrends())
        #expect(try windows.unpublishedTrends().isEmpty)
        let published = try env.readTopic(topic, idleMs: 1500).map { (String(decoding: $0.key ?? [], as: UTF8.self), $0.value == nil) }
        #expect(published.filter(\.1).map(\.0).sorted() == ["\(h("A")):2026-03-01", "\(h("B")):2026-03-01"])
        #expect(published.filter { !$0.1 }.map(\.0).sorted()
            == ["\(h("A")):2026-03-01:USD", "\(h("B")):2026-03-01:EUR", "\(h("B")):2026-03-01:USD"])
    }

    /// Version 6 keeps the window state per user. Before it, resource r1 of account A held only
    /// user X's detection (the latest); the migration adds user Y's from ml_training_data (and
    /// Y's saving from user_action_patterns), for months the state holds only, so erasing X then
    /// leaves Y's figures, which the correction finds without reading other users' fact rows.
    @Test func windowStatePerUserAddsTheOtherUsersLatestRows() async throws {
        let db = try await Self.database(atVersion: 5)
        let h = TestPseudonym.hex
        for (account, user, cost, day, offset) in [("A", "X", 30.0, "10", 3), ("A", "Y", 10.0, "05", 2), ("A", "Y", 12.0, "02", 1),
                                                   ("C", "Y", 5.0, "05", 4)] {
            try db.query("""
                INSERT INTO ml_training_data (scan_hash, resource_hash, account_hash, user_hash, event_hash, provider, region_bucket,
                    resource_type, scenario, confidence, estimated_monthly_cost, currency, metrics, tag_keys, detected_at, key_id,
                    source_topic, source_partition, source_offset)
                VALUES (\(h("s\(offset)")), \(h("r1")), \(h(account)), \(h(user)), \(h("e")), 'aws', 'eu-*', 'ebs_volume', 'idle', 'high', \(cost), 'USD',
                        '{}', '{}', \("2026-03-\(day)T00:00:00Z")::timestamptz, 'k', 'cloudwaste.scan-resources.v1', 0, \(offset))
                """)
        }
        for (user, saved, day, offset) in [("X", 30.0, "11", 6), ("Y", 10.0, "06", 5)] {
            try db.query("""
                INSERT INTO user_action_patterns (event_hash, user_hash, account_hash, resource_hash, provider, resource_type, action,
                    detected_at, action_at, time_to_action_hours, cost_saved_monthly, key_id, source_topic, source_partition, source_offset)
                VALUES (\(h("a\(offset)")), \(h(user)), \(h("A")), \(h("r1")), 'aws', 'ebs_volume', 'deleted', '2026-03-01T00:00:00Z',
                        \("2026-03-\(day)T00:00:00Z")::timestamptz, 1, \(saved), 'k', 'cloudwaste.user-actions.v1', 0, \(offset))
                """)
        }
        // The old state: the latest of all users per resource, for account A only (C's month was
        // never aggregated, e.g. with windows off).
        try db.query("""
            INSERT INTO window_resource_costs (account_hash, month, resource_hash, currency, user_hash, provider, resource_type, cost,
                detected_at, source_partition, source_offset)
            VALUES (\(h("A")), '2026-03-01', \(h("r1")), 'USD', \(h("X")), 'aws', 'ebs_volume', 30, '2026-03-10T00:00:00Z', 0, 3)
            """)
        try db.query("""
            INSERT INTO window_eliminations (account_hash, month, resource_hash, currency, user_hash, provider, cost_saved, action_at,
                source_partition, source_offset)
            VALUES (\(h("A")), '2026-03-01', \(h("r1")), 'USD', \(h("X")), 'aws', 30, '2026-03-11T00:00:00Z', 0, 6)
            """)
        #expect(try Migrator(schema: "public").migrate(db) == [6, 7, 8])
        #expect(Self.labelled(try db.query("SELECT account_hash, user_hash, cost::text, source_offset FROM window_resource_costs ORDER BY 1, 2").rows)
            == [["A", "X", "30.0000", "3"], ["A", "Y", "10.0000", "2"]])
        #expect(Self.labelled(try db.query("SELECT user_hash, cost_saved::text FROM window_eliminations ORDER BY 1").rows)
            == [["X", "30.0000"], ["Y", "10.0000"]])

        var config = StreamConfig()
        config.postgresSchema = "public"
        let windows = CostTrendWindows(connection: db, settings: .init(config: config))
        try db.query("INSERT INTO window_dirty_months (account_hash, month, currency, records) VALUES (\(TestPseudonym.bytea("A")), '2026-03-01', 'USD', 0)")
        _ = try windows.recompute(keyId: "k", wait: true)
        let trend: PostgresQuery = """
            SELECT resources_detected, waste_detected_monthly_cost::text, resources_eliminated, waste_eliminated_monthly_cost::text
              FROM cost_trend_data WHERE account_hash = \(TestPseudonym.bytea("A"))
            """
        #expect(try db.query(trend).rows == [["1", "30.0000", "1", "30.0000"]])  // the latest of all users
        let privacy = PrivacyRequests(connection: db, schema: "public", consentMode: .optOut, windowsEnabled: true)
        _ = try privacy.forget(userHash: try #require(Pseudonym(hex: h("X"))), keyId: "k")
        _ = try windows.recompute(keyId: "k", wait: true)
        #expect(try db.query(trend).rows == [["1", "10.0000", "1", "10.0000"]])  // Y's, now the latest left
    }
}

/// SPEC v1.2: migration 8 turns every hex pseudonym column into 32 bytes of `bytea`, and nothing
/// users see changes.
@Suite(.serialized) struct PseudonymBytesMigrationTests {
    /// Rows of every table written by the pipeline (the product's schema), copied into a schema at
    /// version 7 as the release before stored them (hex text), plus a `forget` consent event of
    /// that release. Exported and turned into a dataset there, migrated, exported again: every
    /// value is the same read as hex, and the files are the same byte for byte.
    @Test func everyValueAndEveryOutputIsTheSameAfterTheMigration() async throws {
        let env = try await TestEnvironment(partitions: [.scanResources: 3, .userActions: 2, .resourceLifecycle: 2, .metricSamples: 2,
                                                         .privacyRequests: 2, .billedCosts: 2])
        let traffic = TrafficGenerator(seed: 11, badRecordShare: 0.02).messages(count: 3000)
        // Two of its users ask for privacy: consent history, a preference, an erasure.
        let users = traffic.filter { $0.topic == .scanResources }.compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.value))) .flatMap { ($0 as? [String: Any])?["user_id"] as? String }
        }
        let (optingOut, erased) = (try #require(users.first), try #require(users.last { $0 != users.first }))
        let request = { (user: String, kind: String, event: String) in
            TrafficGenerator.Message(topic: .privacyRequests, key: user,
                                     value: Array("{\"event_id\":\"\(event)\",\"user_id\":\"\(user)\",\"request\":\"\(kind)\",\"requested_at\":\"2026-07-15T00:00:00Z\"}".utf8))
        }
        try env.publish(traffic + [request(optingOut, "opt_out", "p1"), request(erased, "erase", "p2")])
        try env.runPipeline()
        let db = try env.connect()
        let tables = try db.query("""
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'schema_migrations' ORDER BY 1
            """).rows.map { $0[0]! }
        let withHashes = try db.query("""
            SELECT DISTINCT table_name FROM information_schema.columns
             WHERE table_schema = 'public' AND column_name LIKE '%\\_hash' AND data_type = 'bytea'
            """).rows.map { $0[0]! }
        for table in withHashes where table != "window_dirty_months" {  // drained by the recompute
            #expect(try TableChecksums.count(db, table) > 0, "the pipeline left no rows in \(table)")
        }

        // The release before: version 7, pseudonyms as hex text.
        try db.query("CREATE SCHEMA before; CREATE TABLE before.schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        let before = Migrator(schema: "before")
        for m in Migrator.migrations where m.version <= 7 {
            try db.query(before.sql(of: m))
            try db.query("INSERT INTO before.schema_migrations (version, name) VALUES (\(m.version), \(m.name))")
        }
        for table in tables {
            let columns = try db.query("""
                SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = \(table)
                 ORDER BY ordinal_position
                """).decodeRows(as: (String, String).self).map { (name: PostgresIdentifier($0), type: $1) }
            let select = PostgresQuery.joined(columns.map { $0.type == "bytea" && $0.name.name.hasSuffix("_hash") ? "encode(\($0.name), 'hex')" : "\($0.name)" })
            try db.query("INSERT INTO before.\(PostgresIdentifier(table)) (\(columns.map(\.name))) SELECT \(select) FROM public.\(PostgresIdentifier(table))")
        }
        let someUser = try #require(try db.query("SELECT user_hash FROM before.ml_training_data LIMIT 1").string(0, 0))
        try db.query("""
            INSERT INTO before.consent_events (user_hash, effective_at, event_hash, consent)
            VALUES (\(someUser), '2026-01-02T03:04:05Z', 'forget:1767323045000000', 'opted_out')
            """)

        func outputs(_ schema: String) throws -> [String: [UInt8]] {
            let exported = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("export-\(UUID().uuidString.prefix(8))")
            let dataset = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("dataset-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: exported); try? FileManager.default.removeItem(at: dataset) }
            var files: [String: [UInt8]] = [:]
            for format in [Exporter.Format.jsonl, .csv] {
                let out = exported.appendingPathComponent(format.fileExtension)
                let manifest = try Exporter().run(db: try env.connect(), schema: schema, days: 36_500, format: format, gzip: false,
                                                  tables: [], outputDirectory: out)
                for file in manifest.files { files["export/\(file.file)"] = Array(try Data(contentsOf: out.appendingPathComponent(file.file))) }
            }
            let manifest = try DatasetExporter().run(db: try env.connect(), schema: schema, options: .init(), outputDirectory: dataset)
            for file in manifest.files { files["dataset/\(file.file)"] = Array(try Data(contentsOf: dataset.appendingPathComponent(file.file))) }
            return files
        }
        let hexFiles = try outputs("before")

        #expect(try before.migrate(db) == [8])
        #expect(try before.migrate(db) == [])  // once
        // Every pseudonym column is bytea now, and every value is the one the product wrote.
        #expect(try db.query("""
            SELECT count(*) FROM information_schema.columns
             WHERE table_schema = 'before' AND column_name LIKE '%\\_hash' AND data_type <> 'bytea'
            """).decode(Int.self) == 0)
        let forgetEvent = Pseudonym(sha256Of: Array("forget:1767323045000000".utf8))
        #expect(try db.query("SELECT count(*) FROM before.consent_events WHERE event_hash = \(forgetEvent)").decode(Int.self) == 1)
        try db.query("DELETE FROM before.consent_events WHERE event_hash = \(forgetEvent)")
        for table in tables {
            let fingerprint = { (schema: String) in
                try db.query("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM \(PostgresIdentifier(schema).member(table)) t").string(0, 0)
            }
            #expect(try fingerprint("before") == fingerprint("public"), "\(table)")
        }

        let bytesFiles = try outputs("before")
        #expect(hexFiles.keys.sorted() == bytesFiles.keys.sorted())
        #expect(hexFiles.count == 2 * StoredTable.exported.count + DatasetExporter.Split.allCases.count)
        for (name, bytes) in hexFiles {
            #expect(bytes == bytesFiles[name], "\(name) differs after the migration")
        }
        // And the files show pseudonyms as 64 hex digits.
        let trainingCSV = String(decoding: try #require(bytesFiles["export/ml_training_data.csv"]), as: UTF8.self)
        let firstRow = try #require(trainingCSV.split(separator: "\n").dropFirst().first)
        #expect(firstRow.split(separator: ",").prefix(5).allSatisfy { $0.count == 64 && $0.allSatisfy(\.isHexDigit) })
    }

    /// The database refuses a pseudonym that is not 32 bytes, whoever writes it.
    @Test func aPseudonymOfTheWrongLengthIsRefused() async throws {
        let db = try PostgresConnection(connectionString: try await TestPostgres.newDatabase("pseudonymlength"))
        try Migrator(schema: "public").migrate(db)
        let h = TestPseudonym.bytea
        for user in ["\\x" + String(repeating: "ab", count: 31), "\\x" + String(repeating: "ab", count: 33), "\\x"] {
            #expect {
                try db.query("""
                    INSERT INTO ml_training_data (scan_hash, resource_hash, account_hash, user_hash, event_hash, provider, region_bucket,
                        resource_type, scenario, confidence, estimated_monthly_cost, currency, metrics, tag_keys, detected_at, key_id,
                        source_topic, source_partition, source_offset)
                    VALUES (\(h("s")), \(h("r")), \(h("a")), \(user), \(h("e")), 'aws', 'eu-*', 'ebs_volume', 'idle', 'high', 1, 'USD',
                            '{}', '{}', now(), 'k', 'cloudwaste.scan-resources.v1', 0, 0)
                    """)
            } throws: { error in
                (error as? PostgresError)?.sqlState == "23514" && "\(error)".contains("user_hash_is_pseudonym")
            }
        }
        #expect {
            try db.query("INSERT INTO user_preferences (user_hash, consent, updated_at, key_id) VALUES (\("not hex"), 'collect', now(), 'k')")
        } throws: { _ in true }
        try db.query("INSERT INTO user_preferences (user_hash, consent, updated_at, key_id) VALUES (\(h("u")), 'collect', now(), 'k')")
        #expect(try db.query("SELECT encode(user_hash, 'hex') FROM user_preferences").string(0, 0) == TestPseudonym.hex("u"))
    }
}
