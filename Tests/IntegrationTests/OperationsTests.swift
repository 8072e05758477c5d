import CloudWasteDevTools
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// SPEC §8: export (streamed, manifest last, never a partial file presented as complete),
/// retention in bounded batches, and the built-in schedules (one runner per group, catch-up).
/// Stand-in pseudonyms computed in SQL, and read back as labels (`TestPseudonym`).
/// A pseudonym stand-in made of the SQL expression `label`.
private func P(_ label: String) -> PostgresQuery { TestPseudonym.sql(label) }
private func L(_ column: String) -> PostgresQuery { TestPseudonym.labelSQL(column) }

@Suite(.serialized) struct OperationsTests {
    // MARK: fixtures

    static func freshDatabase() async throws -> (url: String, db: PostgresConnection) {
        let url = try await TestPostgres.newDatabase("ops")
        let db = try PostgresConnection(connectionString: url)
        try Migrator(schema: "public").migrate(db)
        try db.query("SET TimeZone = 'UTC'")
        return (url, db)
    }

    static func tempDirectory(_ name: String = "export") -> URL {
        URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ops-\(name)-\(UUID().uuidString.prefix(8))")
    }

    /// `count` scan rows numbered from `first`, `daysAgo` days old (minus i seconds). Tag keys hold a
    /// backslash, a quote, a comma and a newline: the bytes that COPY and CSV like to rewrite.
    static func insertScans(_ db: PostgresConnection, first: Int = 1, count: Int, daysAgo: Int, keyId: String = "aaaa1111") throws {
        try db.query("""
            INSERT INTO ml_training_data (scan_hash, resource_hash, account_hash, user_hash, event_hash, provider, region_bucket,
                resource_type, scenario, confidence, estimated_monthly_cost, currency, resource_age_days, metrics, tag_keys, env_class,
                detected_at, key_id, source_topic, source_partition, source_offset)
            SELECT \(P("'s' || i")), \(P("'r' || i")), \(P("'acct'")), \(P("'user' || (i % 3)")),
                   \(P("'e' || i")), 'aws', 'eu-*', 'ebs_volume', 'unattached', 'high',
                   i * 1.25, 'USD', CASE WHEN i % 2 = 0 THEN NULL ELSE i END, '{"cpu": {"avg": 1.5, "trend": "down"}}',
                   ARRAY[E'a\\\\"b', 'env', 'x,y', E'n\\nl', 'é'], 'prod',
                   now() - make_interval(days => \(daysAgo)::int) - make_interval(secs => i), \(keyId), 'cloudwaste.scan-resources.v1', 0, i
            FROM generate_series(\(first)::int, \(first + count - 1)::int) i
            """)
    }

    static func insertDeadLetters(_ db: PostgresConnection, first: Int, count: Int, daysAgo: Int) throws {
        try db.query("""
            INSERT INTO dead_letters (source_topic, source_partition, source_offset, reason, reason_code, payload_bytes, consumer_group, received_at)
            SELECT 'cloudwaste.scan-resources.v1', 0, i, 'bad json', 'malformed_json', 10, 'g', now() - make_interval(days => \(daysAgo)::int)
            FROM generate_series(\(first)::int, \(first + count - 1)::int) i
            """)
    }

    static func insertTrend(_ db: PostgresConnection, account: String, monthsAgo: Int) throws {
        try db.query("""
            INSERT INTO cost_trend_data (account_hash, month, provider, resources_detected, waste_detected_monthly_cost,
                resources_eliminated, waste_eliminated_monthly_cost, top_categories, key_id)
            VALUES (\(TestPseudonym.bytea(account)), (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => \(monthsAgo)::int))::date,
                    'aws', 3, 12.5, 1, 2.5, '[]', 'aaaa1111')
            """)
    }

    static func files(in dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    static func bytes(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }

    static func lines(_ bytes: [UInt8]) -> [String] {
        var parts = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    static func manifest(_ dir: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("manifest.json"))) as! [String: Any]
    }

    static func manifestFiles(_ dir: URL) throws -> [String: [String: Any]] {
        let files = try manifest(dir)["files"] as! [[String: Any]]
        return Dictionary(uniqueKeysWithValues: files.map { ($0["table"] as! String, $0) })
    }

    /// The real `gzip -dc` of each file, concatenated (what an operator's tools would read).
    static func gunzip(_ urls: URL...) async throws -> [UInt8] {
        let out = NSTemporaryDirectory() + "cw-gunzip-\(UUID().uuidString.prefix(8))"
        defer { unlink(out) }
        let status = try await ChildProcess.run("/usr/bin/env", ["gzip", "-dc"] + urls.map(\.path), output: .file(out), error: .inherited)
        guard status == 0 else { throw TestFailure("gzip -dc \(urls.map(\.lastPathComponent)) failed: exit \(status)") }
        return try bytes(URL(fileURLWithPath: out))
    }

    /// A minimal RFC 4180 reader: records of fields, quotes doubled, newlines allowed in quotes.
    static func csvRecords(_ bytes: [UInt8]) -> [[String]] {
        var records: [[String]] = [], record: [String] = [], field: [UInt8] = []
        var quoted = false, i = 0
        while i < bytes.count {
            let b = bytes[i]
            if quoted {
                if b == 0x22 {
                    if i + 1 < bytes.count, bytes[i + 1] == 0x22 { field.append(0x22); i += 1 } else { quoted = false }
                } else { field.append(b) }
            } else if b == 0x22 {
                quoted = true
            } else if b == 0x2C {
                record.append(String(decoding: field, as: UTF8.self)); field = []
            } else if b == 0x0A {
                record.append(String(decoding: field, as: UTF8.self)); field = []
                records.append(record); record = []
            } else {
                field.append(b)
            }
            i += 1
        }
        return records
    }

    // MARK: export

    @Test func jsonlExportIsExactlyTheDatabasesJSONWithAMatchingManifest() async throws {
        let (_, db) = try await Self.freshDatabase()
        try Self.insertScans(db, first: 1, count: 40, daysAgo: 2, keyId: "aaaa1111")
        try Self.insertScans(db, first: 41, count: 10, daysAgo: 5, keyId: "bbbb2222")
        try Self.insertScans(db, first: 51, count: 7, daysAgo: 20)  // outside --days 7
        let dir = Self.tempDirectory()
        let manifest = try Exporter().run(db: db, schema: "public", days: 7, format: .jsonl, gzip: false,
                                          tables: ["ml_training_data"], outputDirectory: dir)
        #expect(Self.files(in: dir) == ["manifest.json", "ml_training_data.jsonl"])

        let fileBytes = try Self.bytes(dir.appendingPathComponent("ml_training_data.jsonl"))
        #expect(fileBytes.last == 0x0A)
        let lines = Self.lines(fileBytes)
        let expected = try db.query("""
            SELECT row_to_json(t)::text FROM (
                SELECT encode(scan_hash, 'hex') AS scan_hash, encode(resource_hash, 'hex') AS resource_hash,
                       encode(account_hash, 'hex') AS account_hash, encode(user_hash, 'hex') AS user_hash,
                       encode(event_hash, 'hex') AS event_hash, provider, region_bucket, resource_type, scenario, confidence,
                       estimated_monthly_cost, currency, resource_age_days, created_hour_utc, created_dow, metrics, tag_keys,
                       env_class, encode(parent_hash, 'hex') AS parent_hash, detected_at, key_id, source_topic, source_partition,
                       source_offset, ingested_at
                  FROM ml_training_data WHERE detected_at >= now() - interval '7 days') t
            """).rows.map { $0[0]! }
        #expect(lines.count == 50)
        #expect(lines.sorted() == expected.sorted())  // byte for byte: no doubled backslashes, no CSV quoting, hex pseudonyms
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        #expect(first["tag_keys"] as? [String] == ["a\\\"b", "env", "x,y", "n\nl", "é"])

        #expect(manifest.totalRows == 50)
        #expect(manifest.keyIds == ["aaaa1111", "bbbb2222"])
        let m = try Self.manifest(dir)
        #expect(m["days"] as? Int == 7)
        #expect(m["format"] as? String == "jsonl")
        #expect(m["gzip"] as? Bool == false)
        #expect(m["key_ids"] as? [String] == ["aaaa1111", "bbbb2222"])
        let range = m["time_range"] as! [String: String]
        let from = Timestamp.parseRFC3339(range["from"]!)!, to = Timestamp.parseRFC3339(range["to"]!)!
        #expect(to.micros - from.micros == 7 * 86_400_000_000)
        let f = try Self.manifestFiles(dir)["ml_training_data"]!
        #expect(f["file"] as? String == "ml_training_data.jsonl")
        #expect(f["rows"] as? Int == 50)
        #expect(f["bytes"] as? Int == fileBytes.count)
        #expect(f["sha256"] as? String == sha256Hex(fileBytes))
        #expect(f["time_column"] as? String == "detected_at")
        let minTime = Timestamp.parseRFC3339(f["min_time"] as! String)!
        #expect(minTime >= from)
    }

    @Test func gzipExportDecompressesToTheSameFilesAndHashesTheCompressedBytes() async throws {
        let (_, db) = try await Self.freshDatabase()
        try Self.insertScans(db, count: 300, daysAgo: 1)
        try Self.insertTrend(db, account: "acct", monthsAgo: 0)
        let plainDir = Self.tempDirectory("plain"), gzipDir = Self.tempDirectory("gzip")
        let plain = try Exporter().run(db: db, schema: "public", days: 30, format: .jsonl, gzip: false, tables: [], outputDirectory: plainDir)
        let gz = try Exporter().run(db: db, schema: "public", days: 30, format: .jsonl, gzip: true, tables: [], outputDirectory: gzipDir)
        #expect(gz.files.map(\.file) == Exporter.defaultTableOrder.map { "\($0).jsonl.gz" })
        #expect(Self.files(in: gzipDir) == (gz.files.map(\.file) + ["manifest.json"]).sorted())
        #expect(try Self.manifest(gzipDir)["gzip"] as? Bool == true)
        for (p, g) in zip(plain.files, gz.files) {
            let compressed = try Self.bytes(gzipDir.appendingPathComponent(g.file))
            #expect(g.sha256 == sha256Hex(compressed))
            #expect(g.bytes == Int64(compressed.count))
            #expect(compressed.starts(with: [0x1F, 0x8B]))
            let original = try Self.bytes(plainDir.appendingPathComponent(p.file))
            #expect(Self.lines(try await Self.gunzip(gzipDir.appendingPathComponent(g.file))).sorted() == Self.lines(original).sorted())
            #expect(g.rows == p.rows)
        }
        #expect(gz.files.first { $0.table == "ml_training_data" }?.rows == 300)
        #expect(gz.files.first { $0.table == "user_preferences" }?.rows == 0)
    }

    @Test func csvExportHasAHeaderAndRoundTripsAwkwardValues() async throws {
        let (_, db) = try await Self.freshDatabase()
        try Self.insertScans(db, count: 12, daysAgo: 3)
        try Self.insertTrend(db, account: "acct-now", monthsAgo: 0)
        let dir = Self.tempDirectory()
        let manifest = try Exporter().run(db: db, schema: "public", days: 7, format: .csv, gzip: false,
                                          tables: ["ml_training_data", "cost_trend_data"], outputDirectory: dir)
        #expect(manifest.files.map(\.file) == ["ml_training_data.csv", "cost_trend_data.csv"])

        let mlBytes = try Self.bytes(dir.appendingPathComponent("ml_training_data.csv"))
        let ml = Self.csvRecords(mlBytes)
        let columns = try db.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'ml_training_data' ORDER BY ordinal_position").rows.map { $0[0]! }
        #expect(ml.first == columns)
        #expect(ml.count - 1 == 12)
        #expect(manifest.files[0].rows == 12)  // rows, not lines: a tag key holds a newline
        #expect(manifest.files[0].sha256 == sha256Hex(mlBytes))
        let tagColumn = columns.firstIndex(of: "tag_keys")!
        let expectedTags = try db.query("SELECT tag_keys::text FROM ml_training_data LIMIT 1").string(0, 0)!
        #expect(ml.dropFirst().allSatisfy { $0[tagColumn] == expectedTags })

        let trend = Self.csvRecords(try Self.bytes(dir.appendingPathComponent("cost_trend_data.csv")))
        #expect(trend.first?.contains("emitted_revision") == false)  // outbox bookkeeping, not data
        #expect(trend.first?.contains("key_id") == true)
        #expect(trend.count - 1 == 1)
    }

    @Test func daysSelectsByEachTablesTimeColumn() async throws {
        let (_, db) = try await Self.freshDatabase()
        try Self.insertScans(db, first: 1, count: 3, daysAgo: 1)
        try Self.insertScans(db, first: 4, count: 4, daysAgo: 10)
        try Self.insertScans(db, first: 8, count: 5, daysAgo: 40)
        try Self.insertTrend(db, account: "a", monthsAgo: 0)
        try Self.insertTrend(db, account: "a", monthsAgo: 3)
        // Billed days 0…9 days back: a day belongs to the window when it starts in it, so 7 days
        // back (which started before now − 7 days) is out of a 7-day export.
        try db.query("""
            INSERT INTO resource_billed_costs (resource_hash, usage_date, cost_type, account_hash, event_hash, provider, currency,
                                               amount, key_id, source_topic, source_partition, source_offset)
            SELECT \(P("'r'")), ((now() AT TIME ZONE 'UTC') - make_interval(days => d))::date, 'unblended', \(P("'a'")), \(P("'e' || d")), 'aws', 'USD',
                   1, 'aaaa1111', 'cloudwaste.billed-costs.v1', 0, d
              FROM generate_series(0, 9) d
            """)
        func rows(_ days: Int) throws -> [String: Int] {
            let m = try Exporter().run(db: db, schema: "public", days: days, format: .jsonl, gzip: false,
                                       tables: ["ml_training_data", "cost_trend_data", "resource_billed_costs"], outputDirectory: Self.tempDirectory())
            return Dictionary(uniqueKeysWithValues: m.files.map { ($0.table, $0.rows) })
        }
        #expect(try rows(7) == ["ml_training_data": 3, "cost_trend_data": 1, "resource_billed_costs": 7])
        #expect(try rows(30)["ml_training_data"] == 7)
        #expect(try rows(365) == ["ml_training_data": 12, "cost_trend_data": 2, "resource_billed_costs": 10])
    }

    @Test func badInputIsAUsageErrorThatWritesNothing() async throws {
        let (_, db) = try await Self.freshDatabase()
        try Self.insertScans(db, count: 3, daysAgo: 1)
        func usageError(days: Int = 7, tables: [String] = [], dir: URL) -> ExportError? {
            do {
                _ = try Exporter().run(db: db, schema: "public", days: days, format: .jsonl, gzip: false, tables: tables, outputDirectory: dir)
                return nil
            } catch let e as ExportError {
                return e
            } catch {
                return nil
            }
        }
        let dir = Self.tempDirectory()
        let unknown = usageError(tables: ["ml_training_data", "users", "passwords"], dir: dir)
        #expect(unknown?.isUsage == true)
        #expect(unknown?.description.contains("users, passwords") == true)
        #expect(Self.files(in: dir).isEmpty)
        for days in [0, -3] {
            #expect(usageError(days: days, dir: dir)?.isUsage == true)
        }
        let unwritable = usageError(dir: URL(fileURLWithPath: "/proc/cloudwaste-export/out"))
        #expect(unwritable?.isUsage == true)
        #expect(unwritable?.description.contains("/proc/cloudwaste-export/out") == true)
        // A folder that already holds a finished export is never overwritten.
        _ = try Exporter().run(db: db, schema: "public", days: 7, format: .jsonl, gzip: false, tables: [], outputDirectory: dir)
        #expect(usageError(dir: dir)?.isUsage == true)
        #expect(try Self.manifest(dir)["total_rows"] as? Int == 3)
        #expect(try db.query("SELECT now() = statement_timestamp()").decode(Bool.self) == true)  // not left in a transaction
    }

    @Test func aFailureHalfwayLeavesNoFilesAndNoManifest() async throws {
        let (_, db) = try await Self.freshDatabase()
        try Self.insertScans(db, count: 20, daysAgo: 1)
        try db.query("DROP TABLE user_preferences")
        for gzip in [false, true] {
            let dir = Self.tempDirectory()
            #expect(throws: (any Error).self) {
                try Exporter().run(db: db, schema: "public", days: 7, format: .jsonl, gzip: gzip,
                                   tables: ["ml_training_data", "user_preferences"], outputDirectory: dir)
            }
            #expect(Self.files(in: dir).isEmpty)  // ml_training_data was complete, but removed with the run
        }
        // The connection is usable and outside any transaction afterwards.
        #expect(try db.query("SELECT count(*) FROM ml_training_data").decode(Int.self) == 20)
        #expect(try db.query("SELECT now() = statement_timestamp()").decode(Bool.self) == true)
    }

    @Test func cancellationStopsTheExportAndRemovesItsFiles() async throws {
        let (_, db) = try await Self.freshDatabase()
        try Self.insertScans(db, count: 40_000, daysAgo: 1)
        let dir = Self.tempDirectory()
        #expect(throws: ExportError.self) {
            try Exporter(isCancelled: { true }).run(db: db, schema: "public", days: 7, format: .csv, gzip: true,
                                                    tables: ["ml_training_data"], outputDirectory: dir)
        }
        #expect(Self.files(in: dir).isEmpty)
    }

    // MARK: retention

    @Test func retentionDeletesExactlyTheOldRowsInBatches() async throws {
        let (_, db) = try await Self.freshDatabase()
        try Self.insertScans(db, first: 1, count: 25, daysAgo: 800)
        try Self.insertScans(db, first: 26, count: 5, daysAgo: 10)
        try Self.insertDeadLetters(db, first: 1, count: 12, daysAgo: 100)
        try Self.insertDeadLetters(db, first: 13, count: 3, daysAgo: 1)
        try Self.insertTrend(db, account: "old", monthsAgo: 30)
        try Self.insertTrend(db, account: "new", monthsAgo: 0)
        try db.query("""
            INSERT INTO window_resource_costs VALUES (\(P("'old'")), (date_trunc('month', now()) - interval '30 months')::date, \(P("'r'")), \(P("'u'")), 'aws', 'ebs', 1, now() - interval '900 days', 0, 1),
                                                     (\(P("'new'")), date_trunc('month', now())::date, \(P("'r'")), \(P("'u'")), 'aws', 'ebs', 1, now(), 0, 2);
            INSERT INTO user_preferences VALUES (\(P("'u-old'")), 'opted_out', now() - interval '2000 days', NULL, 'aaaa1111');
            INSERT INTO resource_billed_costs (resource_hash, usage_date, cost_type, account_hash, event_hash, provider, currency,
                                               amount, key_id, source_topic, source_partition, source_offset)
            SELECT \(P("'r' || d")), ((now() AT TIME ZONE 'UTC') - make_interval(days => d))::date, 'unblended', \(P("'a'")), \(P("'e'")), 'aws', 'USD',
                   1, 'aaaa1111', 'cloudwaste.billed-costs.v1', 0, d
              FROM unnest(ARRAY[800, 765, 700, 10]) d;
            """)
        let cleaner = RetentionCleaner(schema: "public", defaultDays: 730, tableDays: ["dead_letters": 90], batchRows: 10)
        let preview = Dictionary(uniqueKeysWithValues: try cleaner.count(db).map { ($0.table, $0.deletedRows) })
        #expect(preview["ml_training_data"] == 25)
        #expect(try TableCounts.count(db, "ml_training_data") == 30)  // a dry run deletes nothing

        let results = Dictionary(uniqueKeysWithValues: try cleaner.run(db).map { ($0.table, $0) })
        #expect(results["ml_training_data"]?.deletedRows == 25)
        #expect(results["ml_training_data"]?.batches == 3)  // 10 + 10 + 5
        #expect(results["ml_training_data"]?.days == 730)
        #expect(results["dead_letters"]?.deletedRows == 12)
        #expect(results["dead_letters"]?.batches == 2)
        #expect(results["dead_letters"]?.days == 90)
        #expect(results["cost_trend_data"]?.deletedRows == 1)
        #expect(results["window_resource_costs"]?.deletedRows == 1)
        #expect(results["user_action_patterns"]?.deletedRows == 0)
        // Billed days go with their month's cost-trend row: once the whole UTC month they fall in
        // is older than the cutoff (765 days back is always in an earlier month than 730).
        #expect(results["resource_billed_costs"]?.deletedRows == 2)
        #expect(try db.query("SELECT string_agg(source_offset::text, ',' ORDER BY source_offset) FROM resource_billed_costs").string(0, 0) == "10,700")
        #expect(results.keys.contains("user_preferences") == false)
        #expect(preview == results.mapValues(\.deletedRows))

        #expect(try db.query("SELECT string_agg(\(L("scan_hash")), ',' ORDER BY source_offset) FROM ml_training_data").string(0, 0) == "s26,s27,s28,s29,s30")
        #expect(try db.query("SELECT string_agg(source_offset::text, ',' ORDER BY source_offset) FROM dead_letters").string(0, 0) == "13,14,15")
        #expect(try db.query("SELECT string_agg(\(L("account_hash")), ',') FROM cost_trend_data").string(0, 0) == "new")
        #expect(try db.query("SELECT string_agg(\(L("account_hash")), ',') FROM window_resource_costs").string(0, 0) == "new")
        #expect(try TableCounts.count(db, "user_preferences") == 1)  // consent is never aged out

        let again = try cleaner.run(db)
        #expect(again.allSatisfy { $0.deletedRows == 0 && $0.batches == 1 })
    }

    @Test func retentionRefusesAgesForProtectedOrUnknownTables() async throws {
        for table in ["user_preferences", "erasures", "ml_trainig_data"] {
            let cleaner = RetentionCleaner(schema: "public", defaultDays: 730, tableDays: [table: 30], batchRows: 100)
            #expect(throws: RetentionCleaner.Invalid.self) { try cleaner.validate() }
        }
        #expect(throws: RetentionCleaner.Invalid.self) {
            try RetentionCleaner(schema: "public", defaultDays: 0, batchRows: 100).validate()
        }
    }

    // MARK: schedules

    static func schedulerConfig(url: String, export: String? = "0 3 * * 1", retention: String? = "30 4 * * *") -> StreamConfig {
        var c = StreamConfig()
        c.postgresURL = url
        c.groupId = "ops-\(UUID().uuidString.prefix(8))"
        c.exportSchedule = export
        c.retentionSchedule = retention
        c.stateDirectory = tempDirectory("state").path  // exports under <state>/exports (export_directory "")
        c.exportDays = 7
        c.retentionBatchRows = 10
        return c
    }

    static func lastFire(_ db: PostgresConnection, _ schedule: String) throws -> String? {
        let r = try db.query("SELECT to_char(last_fire AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM schedule_runs WHERE schedule = \(schedule)")
        return r.rowCount == 0 ? nil : r.string(0, 0)
    }

    @Test func aMissedScheduleRunsOnceAndIsCaughtUpAfterARestart() async throws {
        let (url, db) = try await Self.freshDatabase()
        try Self.insertScans(db, first: 1, count: 4, daysAgo: 1)
        try Self.insertScans(db, first: 5, count: 6, daysAgo: 800)
        let config = Self.schedulerConfig(url: url)
        let monday = Timestamp.parseRFC3339("2026-11-30T12:00:00Z")!
        let scheduler = try Scheduler(config: config)

        #expect(try scheduler.runDue(now: monday) == ["export", "retention"])  // never ran: both were missed
        #expect(try Self.lastFire(db, "export") == "2026-11-30T03:00:00Z")
        #expect(try Self.lastFire(db, "retention") == "2026-11-30T04:30:00Z")
        #expect(config.exportRoot == config.stateDirectory + "/exports")
        let exportDir = URL(fileURLWithPath: config.exportRoot).appendingPathComponent("20261130T030000Z")
        #expect(try Self.manifest(exportDir)["total_rows"] as? Int == 4)
        #expect(try TableCounts.count(db, "ml_training_data") == 4)
        #expect(try db.query("SELECT detail FROM schedule_runs WHERE schedule = 'retention'").string(0, 0)?.contains("ml_training_data=6") == true)

        #expect(try scheduler.runDue(now: monday) == [])  // served: not twice
        #expect(try scheduler.runDue(now: Timestamp(micros: monday.micros + 3_600_000_000)) == [])
        let tuesday = Timestamp(micros: monday.micros + 86_400_000_000)
        #expect(try scheduler.runDue(now: tuesday) == ["retention"])  // daily yes, weekly not yet

        // A restart (new instance, now with gzipped exports) a week and a half later: each missed
        // schedule runs once.
        var gzipped = config
        gzipped.exportGzip = true
        let restarted = try Scheduler(config: gzipped)
        #expect(try restarted.runDue(now: Timestamp(micros: tuesday.micros + 3_600_000_000)) == [])
        let later = Timestamp.parseRFC3339("2026-12-10T01:00:00Z")!
        #expect(try restarted.runDue(now: later) == ["export", "retention"])
        #expect(try Self.lastFire(db, "export") == "2026-12-07T03:00:00Z")
        #expect(try Self.lastFire(db, "retention") == "2026-12-09T04:30:00Z")
        #expect(try restarted.runDue(now: later) == [])
        #expect(Self.files(in: URL(fileURLWithPath: config.exportRoot)) == ["20261130T030000Z", "20261207T030000Z"])
        let second = Self.files(in: URL(fileURLWithPath: config.exportRoot).appendingPathComponent("20261207T030000Z"))
        #expect(second.contains("ml_training_data.jsonl.gz") && !second.contains("ml_training_data.jsonl"))
        #expect(Self.files(in: exportDir).contains("ml_training_data.jsonl"))
    }

    @Test func aScheduleHeldByAnotherInstanceIsSkipped() async throws {
        let (url, db) = try await Self.freshDatabase()
        try Self.insertScans(db, count: 5, daysAgo: 800)
        let config = Self.schedulerConfig(url: url, export: nil)
        let scheduler = try Scheduler(config: config)
        #expect(scheduler.jobs.map(\.name) == ["retention"])
        let other = try PostgresConnection(connectionString: url)  // another instance of the group, mid-run
        let key = Scheduler.lockKey(group: config.groupId, schedule: "retention")
        try other.query("SELECT pg_advisory_lock(hashtext(\(key)))")
        let now = Timestamp.parseRFC3339("2026-11-30T12:00:00Z")!
        #expect(try scheduler.runDue(now: now) == [])
        #expect(try TableCounts.count(db, "ml_training_data") == 5)
        #expect(try Self.lastFire(db, "retention") == nil)

        // Another group's instances do not compete for this group's lock.
        var otherGroup = config
        otherGroup.groupId += "-b"
        #expect(try Scheduler(config: otherGroup).runDue(now: now) == ["retention"])
        try db.query("DELETE FROM schedule_runs")
        try Self.insertScans(db, first: 100, count: 5, daysAgo: 800)

        try other.query("SELECT pg_advisory_unlock(hashtext(\(key)))")
        #expect(try scheduler.runDue(now: now) == ["retention"])
        #expect(try TableCounts.count(db, "ml_training_data") == 0)
        // The lock was released after the run: the other instance can take it.
        #expect(try other.query("SELECT pg_try_advisory_lock(hashtext(\(key)))").decode(Bool.self) == true)
    }

    @Test func theBackgroundThreadChecksAtStartAndStopsPromptly() async throws {
        let (url, db) = try await Self.freshDatabase()
        try Self.insertScans(db, count: 3, daysAgo: 800)
        let scheduler = try Scheduler(config: Self.schedulerConfig(url: url, export: nil, retention: "* * * * *"))
        scheduler.start()
        let deadline = Date().addingTimeInterval(30)
        while try Self.lastFire(db, "retention") == nil, Date() < deadline { usleep(100_000) }
        let started = Date()
        scheduler.stop()
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(try Self.lastFire(db, "retention") != nil)
        #expect(try TableCounts.count(db, "ml_training_data") == 0)
    }

    @Test func invalidSchedulesAreConfigurationErrors() async throws {
        var c = StreamConfig()
        c.exportSchedule = "0 3 * *"
        #expect(throws: StreamConfig.Invalid.self) { try Scheduler(config: c) }
        c.exportSchedule = nil
        c.retentionTableDays["user_preferences"] = 10
        #expect(throws: StreamConfig.Invalid.self) { try Scheduler(config: c) }
        c.retentionSchedule = nil  // retention disabled: its settings are not checked here
        #expect(try Scheduler(config: c).jobs.isEmpty)
    }
}

private enum TableCounts {
    static func count(_ db: PostgresConnection, _ table: String) throws -> Int {
        try db.query("SELECT count(*) FROM \(PostgresIdentifier(table))").decode(Int.self)
    }
}
