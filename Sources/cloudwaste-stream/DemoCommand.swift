import ArgumentParser
import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
import CloudWasteStream
import Foundation
import Logging

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Embedded Kafka (mock cluster) + scratch PostgreSQL + generated scanner traffic, then a summary.")

    @Option(help: "How many records to generate.") var records = 20_000
    @Option(help: "Share of deliberately bad records (0-1).") var badShare = 0.01
    @Option(help: "Folder for the scratch PostgreSQL.") var stateDir = ".state/demo"
    @Flag(help: "Keep the broker, PostgreSQL and the daemon running for exploring (Ctrl-C stops).") var keepRunning = false
    @Option(help: "HTTP port with --keep-running (0 = none).") var httpPort = 8080

    func run() async throws {
        try await withExitCodes {
            guard records > 0 else { throw UsageFailure("--records must be positive") }
            guard (0...1).contains(badShare) else { throw UsageFailure("--bad-share must be between 0 and 1") }
            let logger = makeLogger("cloudwaste.demo")
            // Recent traffic (the last weeks up to a few days ago), so that the 7- and 30-day counts
            // of `stats` and the status page show something, whatever today's date.
            let today = Timestamp(micros: Timestamp.now().micros / 86_400_000_000 * 86_400_000_000)
            let generator = TrafficGenerator(badRecordShare: badShare, start: Timestamp(micros: today.micros - 45 * 86_400_000_000), months: 2)
            let messages = generator.messages(count: records)
            print("Starting scratch PostgreSQL and the mock Kafka cluster…")
            let env = try await LocalEnvironment(stateDirectory: URL(fileURLWithPath: stateDir).standardizedFileURL,
                                                 partitions: LocalEnvironment.partitions(for: messages))
            defer { env.shutdown(keepFiles: true) }
            print("Kafka bootstrap servers: \(env.kafka.bootstrapServers)  (kcat -b \(env.kafka.bootstrapServers) -L)")
            print("PostgreSQL: \(env.databaseURL)")

            var config = StreamConfig()
            config.kafkaBootstrapServers = env.kafka.bootstrapServers
            config.postgresURL = env.databaseURL
            config.groupId = "cloudwaste-demo"
            config.httpPort = keepRunning ? httpPort : 0
            config.windowIdleTimeoutSeconds = 5
            let key = HMACKey.generate()
            let regions = try loadRegions(config)

            let published = try LocalEnvironment.publish(messages, bootstrap: env.kafka.bootstrapServers)
            print("Published \(published) generated records (AWS, Azure, GCP, Microsoft 365; \(Int(badShare * 100))% bad).")

            let pipeline = StreamPipeline(config: config, key: key, regions: regions,
                                          options: .init(untilIdleSeconds: keepRunning ? nil : 3), logger: logger)
            if keepRunning {
                print("Running; HTTP on port \(httpPort). Ctrl-C stops everything.")
                try await runServices(pipeline: pipeline, config: config, logger: logger)
            } else {
                do { try pipeline.start() } catch { throw RuntimeFailure("cannot start the pipeline: \(error)") }
                pipeline.waitUntilFinished()
            }
            if let failure = pipeline.failure { throw RuntimeFailure(failure) }
            let db = try PostgresConnection(connectionString: env.databaseURL)
            print(try DemoSummary.render(db, status: pipeline.status, keyId: key.keyId))
            // The ML-ready dataset of what was just ingested.
            let datasetDirectory = URL(fileURLWithPath: stateDir).standardizedFileURL.appendingPathComponent("dataset-\(Scheduler.folderName(for: .now()))")
            let dataset = try DatasetExporter(logger: logger).run(db: db, schema: "public", options: .init(), outputDirectory: datasetDirectory)
            print(DemoSummary.dataset(dataset, directory: datasetDirectory))
        }
    }
}

/// The demo's readable summary: rows per table, sample anonymized rows, dead letters, cost trends.
enum DemoSummary {
    static func render(_ db: PostgresConnection, status: PipelineStatus, keyId: String) throws -> String {
        var out = "\n=== CloudWaste Stream demo summary (key_id \(keyId)) ===\n\n"
        let report = try StatsReport.collect(db, schema: "public", groupId: "cloudwaste-demo")
        out += "Rows per table:\n"
        for t in report.tables { out += "  \(t.table.padding(toLength: 28, withPad: " ", startingAt: 0)) \(t.total)\n" }
        out += "\nDead letters by reason:\n"
        out += report.deadLettersByReason.map { "  \(String($0.count).padding(toLength: 6, withPad: " ", startingAt: 0)) \($0.reason)" }.joined(separator: "\n") + "\n"
        out += "\nSample anonymized rows (ml_training_data):\n"
        let sample = try db.query("""
            SELECT left(encode(account_hash, 'hex'), 16) || '…', left(encode(resource_hash, 'hex'), 16) || '…', provider, region_bucket, resource_type,
                   estimated_monthly_cost, resource_age_days, env_class, array_to_string(tag_keys, ','), to_char(detected_at, 'YYYY-MM-DD')
              FROM ml_training_data ORDER BY source_partition, source_offset LIMIT 4
            """)
        out += "  account_hash       resource_hash      provider     region  type              cost  age env     tag_keys                       detected\n"
        for (account, resource, provider, region, type, cost, age, env, tags, detected)
            in try sample.decodeRows(as: (String, String, String, String, String, String?, String?, String?, String?, String).self) {
            out += "  " + [account.padding(toLength: 18, withPad: " ", startingAt: 0), resource.padding(toLength: 18, withPad: " ", startingAt: 0),
                           provider.padding(toLength: 12, withPad: " ", startingAt: 0), region.padding(toLength: 7, withPad: " ", startingAt: 0),
                           type.padding(toLength: 16, withPad: " ", startingAt: 0), (cost ?? "").padding(toLength: 7, withPad: " ", startingAt: 0),
                           (age ?? "-").padding(toLength: 4, withPad: " ", startingAt: 0), (env ?? "-").padding(toLength: 7, withPad: " ", startingAt: 0),
                           (tags ?? "").padding(toLength: 30, withPad: " ", startingAt: 0), detected].joined(separator: " ") + "\n"
        }
        out += "\nMonthly cost trends (top accounts by detected waste; one row per currency, never summed across):\n"
        let trends = try db.query("""
            SELECT left(encode(account_hash, 'hex'), 12) || '…', to_char(month, 'YYYY-MM'), currency, provider, resources_detected,
                   round(waste_detected_monthly_cost, 2), resources_eliminated, round(waste_eliminated_monthly_cost, 2),
                   billed_resources, round(billed_waste_monthly_cost, 2), top_categories->0->>'resource_type', revision, finalized
              FROM cost_trend_data ORDER BY waste_detected_monthly_cost DESC LIMIT 10
            """)
        out += "  account        month   cur provider     detected  waste/month eliminated  saved/month billed  billed/month top category      rev final\n"
        for (account, month, currency, provider, detected, waste, eliminated, saved, billed, billedWaste, category, revision, finalized)
            in try trends.decodeRows(as: (String, String, String, String, String, String, String, String, String, String, String?, String, Bool).self) {
            out += "  \(account.padding(toLength: 14, withPad: " ", startingAt: 0)) \(month) \(currency) \(provider.padding(toLength: 12, withPad: " ", startingAt: 0))"
            out += " \(detected.leftPadded(8)) \(waste.leftPadded(12)) \(eliminated.leftPadded(10)) \(saved.leftPadded(12)) \(billed.leftPadded(6)) \(billedWaste.leftPadded(13))"
            out += "  \((category ?? "-").padding(toLength: 16, withPad: " ", startingAt: 0)) \(revision.leftPadded(3)) \(finalized ? "yes" : "no")\n"
        }
        let totals = report.costTrends.suffix(6).map {
            "  \($0.month) \($0.currency): detected \(String(format: "%.2f", $0.wasteDetected)), eliminated \(String(format: "%.2f", $0.wasteEliminated)), billed \(String(format: "%.2f", $0.billedWaste)) over \($0.accounts) accounts"
        }
        out += "\nMonthly totals per currency (latest):\n" + totals.joined(separator: "\n") + "\n"
        let (accountMonths, finalizedMonths) = try db.query("SELECT count(*), count(*) FILTER (WHERE finalized) FROM cost_trend_data")
            .decodeRow(0, as: (Int, Int).self)
        out += "  (\(accountMonths) account-months, \(finalizedMonths) finalized)\n"
        out += "\nThroughput: \(status.recordsCommitted) records in \(status.batchesCommitted) batches"
        if let t = status.throughput { out += ", \(Int(t)) records/s from first poll to last commit" }
        out += "\nTime per stage (s): " + status.stageSeconds.sorted { $0.value > $1.value }
            .map { "\($0.key) \(String(format: "%.2f", $0.value))" }.joined(separator: ", ") + "\n"
        return out
    }
}

extension DemoSummary {
    static func dataset(_ m: DatasetManifest, directory: URL) -> String {
        var out = "\nML dataset (cloudwaste-stream dataset): \(m.totalRows) labelled examples in \(directory.path)\n"
        for f in m.files {
            out += "  \(f.split.padding(toLength: 10, withPad: " ", startingAt: 0)) \(String(f.rows).leftPadded(7)) examples  "
            out += DatasetExporter.labels.map { "\($0) \(f.labels[$0] ?? 0)" }.joined(separator: ", ") + "\n"
        }
        out += "  (split by account pseudonym, label = first user action within 30 days; data card in manifest.json)\n"
        return out
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
