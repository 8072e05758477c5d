import CloudWasteDevTools
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// SPEC §8 `dataset`: labels from the first later action within the window (both edges), billed
/// amounts after detection (restated days at their latest amount, other currencies and cost types
/// left out), the split by account, the files and the data card; and constant memory on a
/// million examples.
@Suite(.serialized) struct DatasetTests {
    static let account = "111111111111"

    static func scan(_ resource: String, at: String, event: String, account: String = account, currency: String = "USD") -> (InputTopic, String?, [UInt8]?) {
        (.scanResources, account, Array("{\"event_id\":\"\(event)\",\"scan_id\":\"scan-\(event)\",\"detected_at\":\"\(at)\",\"user_id\":\"u-\(account)\",\"cloud_account_id\":\"\(account)\",\"provider\":\"aws\",\"region\":\"eu-west-3\",\"resource_type\":\"ebs_volume\",\"resource_id\":\"\(resource)\",\"scenario\":\"unattached\",\"confidence\":\"high\",\"estimated_monthly_cost\":12.5,\"currency\":\"\(currency)\",\"tags\":{\"Env\":\"prod\",\"team, \\\"core\\\"\":\"x\"},\"metrics\":{\"VolumeReadOps\":{\"avg\":0,\"p95\":1.5}}}".utf8))
    }

    static func action(_ resource: String, _ action: String, detected: String, at: String, event: String) -> (InputTopic, String?, [UInt8]?) {
        (.userActions, account, Array("{\"event_id\":\"\(event)\",\"user_id\":\"u-\(account)\",\"cloud_account_id\":\"\(account)\",\"provider\":\"aws\",\"resource_id\":\"\(resource)\",\"resource_type\":\"ebs_volume\",\"action\":\"\(action)\",\"detected_at\":\"\(detected)\",\"action_at\":\"\(at)\"}".utf8))
    }

    static func bill(_ resource: String, day: String, amount: String, event: String, currency: String = "USD", costType: String = "unblended") -> (InputTopic, String?, [UInt8]?) {
        (.billedCosts, account, Array("{\"event_id\":\"\(event)\",\"cloud_account_id\":\"\(account)\",\"provider\":\"aws\",\"resource_id\":\"\(resource)\",\"usage_date\":\"\(day)\",\"amount\":\(amount),\"currency\":\"\(currency)\",\"cost_type\":\"\(costType)\"}".utf8))
    }

    static func outputDirectory() -> URL {
        URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("dataset-\(UUID().uuidString.prefix(8))")
    }

    /// RFC 4180 CSV, as PostgreSQL writes it (quoted fields may hold commas, quotes and newlines).
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { field.append("\""); chars.removeFirst() } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" { quoted = true
            } else if c == "," { row.append(field); field = ""
            } else if c == "\n" { row.append(field); rows.append(row); row = []; field = ""
            } else { field.append(c) }
        }
        return rows
    }

    /// Example rows of a CSV file by scan_hash, each as column → value.
    static func examples(csv path: URL) throws -> [String: [String: String]] {
        let rows = parseCSV(try String(contentsOf: path, encoding: .utf8))
        let header = rows[0]
        #expect(header == DatasetExporter.columns.map(\.name))
        var out: [String: [String: String]] = [:]
        for r in rows.dropFirst() { out[r[1]] = Dictionary(uniqueKeysWithValues: zip(header, r).map { ($0, $1) }) }
        return out
    }

    /// The split of an account pseudonym, computed here from SPEC §8's words.
    static func expectedSplit(_ accountHash: String) -> String {
        let bucket = Int(UInt32(accountHash.prefix(8), radix: 16)!) % 100
        return bucket < 80 ? "train" : bucket < 90 ? "validation" : "test"
    }

    @Test func labelsWindowEdgesBilledDaysAndSplitsMatchHandComputedExamples() async throws {
        let env = try await TestEnvironment()
        let t0 = "2026-03-01T10:00:00Z"
        var messages = [
            Self.scan("vol-1", at: t0, event: "s1"),
            Self.scan("vol-2", at: t0, event: "s2"),
            Self.scan("vol-3", at: t0, event: "s3"),
            Self.scan("vol-4", at: "2026-03-10T10:00:00Z", event: "s4"),
            Self.scan("vol-4", at: "2026-03-05T10:00:00Z", event: "s4b"),
            Self.scan("vol-5", at: t0, event: "s5", currency: "EUR"),
            // vol-1: the first later action labels it (ignored after 24 h), not the later deletion.
            Self.action("vol-1", "deleted", detected: t0, at: "2026-03-05T10:00:00Z", event: "a1b"),
            Self.action("vol-1", "ignored", detected: t0, at: "2026-03-02T10:00:00Z", event: "a1"),
            // vol-2: exactly 30 days later is inside the window; vol-3: one microsecond more is not.
            Self.action("vol-2", "kept", detected: t0, at: "2026-03-31T10:00:00Z", event: "a2"),
            Self.action("vol-3", "deleted", detected: t0, at: "2026-03-31T10:00:00.000001Z", event: "a3"),
            // vol-4: an action before the 03-10 detection labels only the 03-05 one.
            Self.action("vol-4", "deleted", detected: "2026-03-05T09:00:00Z", at: "2026-03-10T09:00:00Z", event: "a4"),
            // vol-1's bill: the detection day (restated 1.0 → 1.5) and day 30 count; the day before,
            // day 31, amortized and EUR amounts do not.
            Self.bill("vol-1", day: "2026-02-28", amount: "40", event: "b0"),
            Self.bill("vol-1", day: "2026-03-01", amount: "1.0", event: "b1"),
            Self.bill("vol-1", day: "2026-03-30", amount: "2.0", event: "b2"),
            Self.bill("vol-1", day: "2026-03-31", amount: "80", event: "b3"),
            Self.bill("vol-1", day: "2026-03-02", amount: "100", event: "b4", costType: "amortized"),
            Self.bill("vol-1", day: "2026-03-03", amount: "7", event: "b5", currency: "EUR"),
            // vol-5 is billed in EUR like its scan.
            Self.bill("vol-5", day: "2026-03-02", amount: "0.25", event: "b6", currency: "EUR"),
        ]
        try env.publish(messages)
        try env.runPipeline()
        try env.publish([Self.bill("vol-1", day: "2026-03-01", amount: "1.5", event: "b1r")])  // restated later
        // Forty more accounts, one detection each, for the split.
        messages = (0..<40).map { Self.scan("vol-x\($0)", at: t0, event: "x\($0)", account: "acct-\($0)") }
        try env.publish(messages)
        try env.runPipeline()

        let out = Self.outputDirectory()
        let manifest = try DatasetExporter().run(db: try env.connect(), schema: "public", options: .init(), outputDirectory: out)
        var all: [String: [String: String]] = [:]
        for split in ["train", "validation", "test"] {
            let rows = try Self.examples(csv: out.appendingPathComponent("\(split).csv"))
            #expect(rows.values.allSatisfy { $0["split"] == split })
            all.merge(rows) { a, _ in a }
        }
        let p = Pseudonymizer(key: env.key)
        func example(_ scanEvent: String) -> [String: String] { all[p.pseudonym(.scan, "scan-\(scanEvent)").hex] ?? [:] }
        #expect(all.count == 46)
        #expect(example("s1")["label"] == "ignored")
        #expect(example("s1")["hours_to_action"] == "24")
        #expect(example("s1")["billed_after_detection"] == "3.5")
        #expect(example("s1")["billed_days"] == "2")
        #expect(example("s2")["label"] == "kept")
        #expect(example("s2")["hours_to_action"] == "720")
        #expect(example("s2")["billed_after_detection"] == "")  // unknown, not zero
        #expect(example("s2")["billed_days"] == "0")
        #expect(example("s3")["label"] == "none")
        #expect(example("s3")["hours_to_action"] == "")
        #expect(example("s4")["label"] == "none")
        #expect(example("s4b")["label"] == "deleted")
        #expect(example("s4b")["hours_to_action"] == "119")
        #expect(example("s5")["currency"] == "EUR")
        #expect(example("s5")["billed_after_detection"] == "0.25")
        #expect(example("s1")["tag_keys"] == #"["env", "team, \"core\""]"#)
        #expect(example("s1")["metrics"] == #"{"VolumeReadOps": {"avg": 0, "p95": 1.5, "trend": null}}"#)
        #expect(example("s1")["has_parent"] == "0")
        #expect(example("s1")["detected_at"] == "2026-03-01 10:00:00+00")

        // The split follows the account pseudonym; no account is in two splits; all three are used.
        var splitOfAccount: [String: Set<String>] = [:]
        for e in all.values {
            #expect(e["split"] == Self.expectedSplit(e["account_hash"]!))
            splitOfAccount[e["account_hash"]!, default: []].insert(e["split"]!)
        }
        #expect(splitOfAccount.values.allSatisfy { $0.count == 1 })
        #expect(Set(all.values.map { $0["split"]! }) == ["train", "validation", "test"])
        #expect(all.values.allSatisfy { $0["split"] == DatasetExporter.split(accountHash: $0["account_hash"]!, .init()).rawValue })

        // The data card agrees with the files.
        #expect(manifest.totalRows == 46)
        #expect(manifest.rowsPerLabel == ["deleted": 1, "ignored": 1, "kept": 1, "none": 43])
        let card = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as! [String: Any]
        let dataCard = card["data_card"] as! [String: Any]
        #expect((dataCard["features"] as! [Any]).count == DatasetExporter.columns.count)
        #expect((dataCard["rows_per_split"] as! [String: Int]).values.reduce(0, +) == 46)
        #expect(((dataCard["label"] as! [String: String])["definition"] ?? "").contains("30 days"))
        #expect(dataCard["key_ids"] as? [String] == [env.key.keyId])
        #expect(dataCard["currencies"] as? [String] == ["EUR", "USD"])
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("train.csv.partial").path))

        // The same rows give the same files, wherever PostgreSQL keeps them: rows are in key order.
        try env.connect().query("UPDATE ml_training_data SET ingested_at = ingested_at WHERE scan_hash < '\\x80'::bytea")
        let again = Self.outputDirectory()
        let manifestAgain = try DatasetExporter().run(db: try env.connect(), schema: "public", options: .init(), outputDirectory: again)
        #expect(manifestAgain.files.map(\.sha256) == manifest.files.map(\.sha256))

        // The same examples as JSON Lines, gzip-compressed, with a narrower window and other ratios.
        var options = DatasetExporter.Options()
        options.format = .jsonl
        options.gzip = true
        options.labelWindowDays = 2
        options.trainPercent = 50
        options.validationPercent = 0
        let out2 = Self.outputDirectory()
        let manifest2 = try DatasetExporter().run(db: try env.connect(), schema: "public", options: options, outputDirectory: out2)
        #expect(manifest2.files.first { $0.split == "validation" }?.rows == 0)
        let decompressed = try await OperationsTests.gunzip(out2.appendingPathComponent("train.jsonl.gz"), out2.appendingPathComponent("test.jsonl.gz"))
        let lines = String(decoding: decompressed, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 46)
        var jsonExamples: [String: [String: Any]] = [:]
        for line in lines {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            jsonExamples[o["scan_hash"] as! String] = o
            let bucket = Int(UInt32((o["account_hash"] as! String).prefix(8), radix: 16)!) % 100
            #expect(o["split"] as? String == (bucket < 50 ? "train" : "test"))
        }
        let s1 = jsonExamples[p.pseudonym(.scan, "scan-s1").hex]!
        #expect(s1["label"] as? String == "ignored")
        #expect(s1["billed_after_detection"] as? Double == 1.5)  // two days: the restated detection day only
        #expect(s1["tag_keys"] as? [String] == ["env", "team, \"core\""])
        #expect(jsonExamples[p.pseudonym(.scan, "scan-s4b").hex]?["label"] as? String == "none")  // 119 h > 2 days
        #expect(jsonExamples[p.pseudonym(.scan, "scan-s2").hex]?["billed_after_detection"] is NSNull)
    }

    @Test func badOptionsAreUsageErrorsBeforeAnyDatabaseWork() async throws {
        let out = Self.outputDirectory()
        var o = DatasetExporter.Options()
        o.trainPercent = 95
        o.validationPercent = 10
        #expect(throws: ExportError.self) { try DatasetExporter.validate(o, outputDirectory: out) }
        o = DatasetExporter.Options()
        o.labelWindowDays = 0
        #expect(throws: ExportError.self) { try DatasetExporter.validate(o, outputDirectory: out) }
        o = DatasetExporter.Options()
        o.days = 0
        #expect(throws: ExportError.self) { try DatasetExporter.validate(o, outputDirectory: out) }
        let bad = try await CommandLineTests.run(["dataset", "--out", out.path, "--format", "parquet"],
                                           environment: ["CLOUDWASTE_POSTGRES_URL": "postgresql://nobody@127.0.0.1:1/none"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--format must be jsonl or csv"))
    }

    /// A million examples: the files hold every one and the process's peak memory stays where a
    /// thousand put it (rows are streamed, never collected).
    @Test func aMillionExamplesStreamWithConstantMemory() async throws {
        let url = try await TestPostgres.newDatabase("dataset")
        let db = try PostgresConnection(connectionString: url)
        try Migrator(schema: "public").migrate(db)
        func insert(_ count: Int, from first: Int) throws {
            try db.query("""
                INSERT INTO ml_training_data (scan_hash, resource_hash, account_hash, user_hash, event_hash, provider, region_bucket,
                    resource_type, scenario, confidence, estimated_monthly_cost, currency, metrics, tag_keys, detected_at, key_id,
                    source_topic, source_partition, source_offset)
                SELECT decode(md5('s' || i) || md5('t' || i), 'hex'), decode(md5('r' || (i / 3)) || md5('q' || i / 3), 'hex'),
                       decode(md5('a' || (i % 5000)) || md5('b'), 'hex'), sha256('u'), sha256('e'), 'aws', 'eu-*', 'ebs_volume', 'unattached', 'high', 12.5, 'USD', '{"cpu": {"avg": 1, "p95": 2}}',
                       '{env,team}', '2026-03-01T00:00:00Z'::timestamptz + make_interval(secs => i), 'k', 't', 0, i
                  FROM generate_series(\(literal: first), \(literal: first + count - 1)) i;
                INSERT INTO user_action_patterns (event_hash, user_hash, account_hash, resource_hash, provider, resource_type, action,
                    detected_at, action_at, time_to_action_hours, key_id, source_topic, source_partition, source_offset)
                SELECT decode(md5('ev' || i) || md5('ew' || i), 'hex'), sha256('u'), sha256('a'), decode(md5('r' || (i / 3)) || md5('q' || i / 3), 'hex'),
                       'aws', 'ebs_volume', 'deleted',
                       '2026-03-01', '2026-03-01T00:00:00Z'::timestamptz + make_interval(secs => i + 3600), 1, 'k', 't', 0, i
                  FROM generate_series(\(literal: first), \(literal: first + count - 1), 7) i;
                ANALYZE
                """)
        }
        func dataset() async throws -> (rows: Int, peakMiB: Int) {
            let out = Self.outputDirectory()
            defer { try? FileManager.default.removeItem(at: out) }
            let run = try await CommandLineTests.run(["dataset", "--out", out.path, "--gzip"], environment: ["CLOUDWASTE_POSTGRES_URL": url], timeout: 600)
            #expect(run.status == 0, "\(run.stderr)")
            let last = run.stdout.split(separator: "\n").last { $0.hasPrefix("dataset: ") } ?? ""
            let rows = Int(last.split(separator: " ")[1]) ?? -1
            let peak = Int(last.split(separator: " ").dropLast().last ?? "") ?? -1
            return (rows, peak)
        }
        try insert(1000, from: 1)
        let small = try await dataset()
        #expect(small.rows == 1000)
        try insert(999_000, from: 1001)
        let large = try await dataset()
        #expect(large.rows == 1_000_000)
        #expect(small.peakMiB > 0)
        #expect(large.peakMiB - small.peakMiB < 48, "peak RSS \(small.peakMiB) MiB for 1000 examples, \(large.peakMiB) MiB for 1,000,000")
        print("dataset memory: \(small.peakMiB) MiB peak for 1000 examples, \(large.peakMiB) MiB for 1,000,000")
    }
}
