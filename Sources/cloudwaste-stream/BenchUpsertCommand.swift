import ArgumentParser
import CloudWasteDevTools
import CloudWastePostgres
import CloudWasteStream
import Foundation

/// `cloudwaste-stream bench-upsert`: the three ways to batch-upsert rows of ml_training_data's
/// shape, measured on this machine (new keys, then every key conflicting), to choose the write path.
struct BenchUpsertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-upsert", abstract: "Compare COPY+staging, multi-row VALUES and unnest for batch upserts.")
    @Option(help: "Rows per method and round.") var rows = 100_000
    @Option(help: "Folder for the scratch PostgreSQL.") var stateDir = ".state/bench-upsert"

    static let columns = ["scan_hash", "resource_hash", "account_hash", "user_hash", "event_hash", "provider", "region_bucket",
                          "resource_type", "scenario", "confidence", "estimated_monthly_cost", "currency", "metrics", "tag_keys",
                          "detected_at", "key_id", "source_topic", "source_partition", "source_offset"]
    static let types = ["text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "float8", "text", "jsonb",
                        "text[]", "timestamptz", "text", "text", "int", "bigint"]

    func run() async throws {
        try await withExitCodes {
            guard rows > 0 else { throw UsageFailure("--rows must be positive") }
            let dir = URL(fileURLWithPath: stateDir).standardizedFileURL
            ScratchPostgres.stopLeftover(in: dir)
            try? FileManager.default.removeItem(at: dir)
            let pg = try ScratchPostgres(directory: dir, durable: true)
            try pg.start()
            defer { pg.destroy() }
            let db = try PostgresConnection(connectionString: pg.url())
            try Migrator(schema: "public").migrate(db)
            let data = (0..<rows).map { i -> [String] in
                let h = { (d: String) in sha256Hex(Array("\(d)\(i)".utf8)) }
                return [h("s"), h("r"), h("a"), h("u"), h("e"), "aws", "eu-*", "ebs_volume", "unattached", "high", "\(Double(i % 5000) / 10)",
                        "USD", "{\"CPUUtilization\":{\"avg\":1.5,\"p95\":3.25,\"trend\":\"down\"}}", "{\"env\",\"owner\"}",
                        "2026-06-01 10:00:00+00", "abcd1234", "cloudwaste.scan-resources.v1", "0", "\(i)"]
            }
            let cols = Self.columns.joined(separator: ", ")
            let updates = Self.columns.dropFirst(2).map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
            try db.execute("CREATE TEMP TABLE stage (LIKE ml_training_data INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            func timed(_ name: String, _ body: () throws -> Void) throws -> Double {
                try db.execute("TRUNCATE ml_training_data")
                let t0 = Date()
                try body()  // new keys
                let insert = Double(rows) / Date().timeIntervalSince(t0)
                let t1 = Date()
                try body()  // every key conflicts
                let update = Double(rows) / Date().timeIntervalSince(t1)
                print("\(name.padding(toLength: 52, withPad: " ", startingAt: 0)) new keys \(Int(insert).description.leftPadded(7)) rows/s   all conflicts \(Int(update).description.leftPadded(7)) rows/s")
                return insert
            }
            print("batch upsert into ml_training_data (\(rows) rows, fsync on, one transaction per batch):")
            _ = try timed("COPY text → temp staging → INSERT…ON CONFLICT ×5000") {
                for chunk in stride(from: 0, to: rows, by: 5000) {
                    try db.transaction {
                        try db.copyIn("COPY stage (\(cols)) FROM STDIN") { w in
                            for r in data[chunk..<min(chunk + 5000, rows)] { try w.write(r.joined(separator: "\t") + "\n") }
                        }
                        try db.execute("INSERT INTO ml_training_data (\(cols)) SELECT \(cols) FROM stage ON CONFLICT (scan_hash, resource_hash) DO UPDATE SET \(updates)")
                    }
                }
            }
            _ = try timed("multi-row VALUES with binds ×1000") {
                for chunk in stride(from: 0, to: rows, by: 1000) {
                    let slice = data[chunk..<min(chunk + 1000, rows)]
                    var sql = "INSERT INTO ml_training_data (\(cols)) VALUES "
                    var binds: [String?] = []
                    for (i, r) in slice.enumerated() {
                        sql += (i > 0 ? "," : "") + "(" + r.indices.map { "$\(binds.count + $0 + 1)::\(Self.types[$0])" }.joined(separator: ",") + ")"
                        binds += r.map { Optional($0) }
                    }
                    sql += " ON CONFLICT (scan_hash, resource_hash) DO UPDATE SET \(updates)"
                    try db.transaction { try db.query(PostgresQuery(unsafeSQL: sql, binds: binds)) }
                }
            }
            _ = try timed("unnest of array parameters ×5000") {
                for chunk in stride(from: 0, to: rows, by: 5000) {
                    let slice = Array(data[chunk..<min(chunk + 5000, rows)])
                    let arrays = Self.columns.indices.map { c in
                        Self.types[c] == "text[]" || Self.types[c] == "jsonb"
                            ? PostgresNullableArray(slice.map { $0[c] }).postgresText : slice.map { $0[c] }.postgresText
                    }
                    let params = Self.columns.indices.map { "$\($0 + 1)::\(Self.types[$0] == "text[]" ? "text" : Self.types[$0])[]" }.joined(separator: ", ")
                    let select = Self.columns.indices.map { Self.types[$0] == "text[]" ? "c\($0)::text[]" : "c\($0)" }.joined(separator: ", ")
                    let sql = "INSERT INTO ml_training_data (\(cols)) SELECT \(select) FROM unnest(\(params)) AS u(\(Self.columns.indices.map { "c\($0)" }.joined(separator: ", "))) ON CONFLICT (scan_hash, resource_hash) DO UPDATE SET \(updates)"
                    try db.transaction { try db.query(PostgresQuery(unsafeSQL: sql, binds: arrays.map { Optional($0) })) }
                }
            }
        }
    }
}
