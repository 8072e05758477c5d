import ArgumentParser
import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
import CloudWasteStream
import Foundation

/// `cloudwaste-stream bench-upsert`: ways of writing the daemon's own ml_training_data rows (as
/// its consumer thread encodes them), PostgreSQL alone, one connection, fsync on, 5,000 rows per
/// transaction, new keys then every key conflicting. It is how the write path was chosen.
struct BenchUpsertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-upsert", abstract: "Compare ways of batch-upserting ml_training_data rows.")
    @Option(help: "Rows per method and round.") var rows = 100_000
    @Option(help: "Folder for the scratch PostgreSQL.") var stateDir = ".state/bench-upsert"

    func run() async throws {
        try await withExitCodes {
            guard rows > 0 else { throw UsageFailure("--rows must be positive") }
            let dir = URL(fileURLWithPath: stateDir).standardizedFileURL
            ScratchPostgres.stopLeftover(in: dir)
            try? FileManager.default.removeItem(at: dir)
            let pg = try ScratchPostgres(directory: dir, durable: true)
            try await pg.start()
            defer { pg.destroy() }
            let db = try PostgresConnection(connectionString: pg.url())
            try Migrator(schema: "public").migrate(db)

            // The rows exactly as the pipeline encodes them: generated scan records, decoded,
            // anonymized, binary-encoded in batches of 5,000.
            let topic = InputTopic.scanResources.name(prefix: "cloudwaste.")
            let builder = BatchBuilder(decoder: RecordDecoder(), anonymizer: Anonymizer(key: HMACKey.generate(), regions: try RegionTable.load(path: nil)),
                                       topicNames: [topic: .scanResources])
            var binary: [ArraySlice<UInt8>] = []
            var offset: Int64 = 0
            for m in TrafficGenerator(seed: 5, badRecordShare: 0).messages(count: rows * 2) where m.topic == .scanResources {
                builder.add(KafkaMessage(topic: topic, partition: 0, offset: offset, key: nil, value: m.value), generation: 1, expected: .uncommitted)
                offset += 1
                if builder.count == 5000 {
                    var tuples: [UInt8] = []
                    try builder.seal()[.training].forEachRun { tuples += $0 }
                    binary.append(tuples[...])
                }
                if binary.count * 5000 >= rows { break }
            }
            let n = binary.count * 5000
            let columns = TableDescription.mlTrainingData.columnList
            let updates = PostgresQuery.joined(columns.dropFirst(2).map { "\($0) = EXCLUDED.\($0)" })
            let upsert: PostgresQuery = "INSERT INTO ml_training_data (\(columns)) SELECT \(columns) FROM stage ON CONFLICT (scan_hash, resource_hash) DO UPDATE SET \(updates)"
            try db.query("CREATE TEMP TABLE stage (LIKE ml_training_data INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")

            // The same rows in COPY text format, from PostgreSQL itself.
            for chunk in binary { try db.copyIn("COPY ml_training_data (\(columns)) FROM STDIN (FORMAT binary)", binaryTuples: chunk) }
            var text: [[UInt8]] = []
            try db.copyOut("COPY (SELECT \(columns) FROM ml_training_data ORDER BY source_offset) TO STDOUT") { text.append($0) }

            func timed(_ name: String, _ body: (Int) throws -> Void) throws {
                try db.query("TRUNCATE ml_training_data; CHECKPOINT")
                let t0 = Date()
                for i in binary.indices { try db.transaction { try body(i) } }
                let insert = Double(n) / Date().timeIntervalSince(t0)
                let t1 = Date()
                var conflicts = "n/a (insert only)"
                if name.contains("ON CONFLICT") {
                    for i in binary.indices { try db.transaction { try body(i) } }
                    conflicts = "\(Int(Double(n) / Date().timeIntervalSince(t1))) rows/s"
                }
                print("\(name.padding(toLength: 58, withPad: " ", startingAt: 0)) new keys \(Int(insert).description.leftPadded(7)) rows/s   all conflicts \(conflicts)")
            }
            print("ml_training_data, \(n) rows of the daemon's own encoding, fsync on, 5,000 rows per transaction:")
            try timed("COPY text → temp staging → INSERT … ON CONFLICT") { i in
                try db.copyIn("COPY stage (\(columns)) FROM STDIN") { w in for row in text[(i * 5000)..<((i + 1) * 5000)] { try w.write(row) } }
                try db.query(upsert)
            }
            try timed("COPY binary → temp staging → INSERT … ON CONFLICT") { i in
                try db.copyIn("COPY stage (\(columns)) FROM STDIN (FORMAT binary)", binaryTuples: binary[i])
                try db.query(upsert)
            }
            try timed("COPY binary straight into the table") { i in
                try db.copyIn("COPY ml_training_data (\(columns)) FROM STDIN (FORMAT binary)", binaryTuples: binary[i])
            }
            try timed("COPY text straight into the table") { i in
                try db.copyIn("COPY ml_training_data (\(columns)) FROM STDIN") { w in for row in text[(i * 5000)..<((i + 1) * 5000)] { try w.write(row) } }
            }
        }
    }
}
