import ArgumentParser
import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
import CloudWasteStream
import Foundation

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Publish realistic scanner traffic to the configured broker.")
    @OptionGroup var options: GlobalOptions
    @Option(help: "How many records.") var records = 10_000
    @Option(help: "Share of bad records (0-1).") var badShare = 0.01
    @Option(help: "Random seed (same seed, same traffic).") var seed: UInt64 = 42

    func run() async throws {
        try await withExitCodes {
            let config = try options.load()
            guard records > 0, (0...1).contains(badShare) else { throw UsageFailure("--records must be positive and --bad-share between 0 and 1") }
            let messages = TrafficGenerator(seed: seed, badRecordShare: badShare).messages(count: records)
            let n = try LocalEnvironment.publish(messages, bootstrap: config.kafkaBootstrapServers, topicPrefix: config.topicPrefix)
            print("published \(n) records to \(config.kafkaBootstrapServers)")
        }
    }
}

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Rows per table (total, 7 and 30 days), dead letters, lag, latest finalized month.")
    @OptionGroup var options: GlobalOptions
    @Flag(help: "JSON for machines.") var json = false

    func run() async throws {
        try await withExitCodes {
            let config = try options.load()
            let db = try PostgresConnection(connectionString: config.postgresURL)
            let report = try StatsReport.collect(db, schema: config.postgresSchema, groupId: config.groupId)
            let lag = ConsumerLag.measure(config: config, offsets: report.offsets, logger: makeLogger("cloudwaste.stats"))
            if json {
                print(report.json(lag: lag.perPartition, lagUnknown: lag.unknownBecause))
            } else {
                print(report.text, terminator: "")
                print("\nconsumer lag (group \(config.groupId)):")
                if let reason = lag.unknownBecause { print("  lag unknown: \(reason)") }
                for k in lag.perPartition.keys.sorted() { print("  \(k)  \(lag.perPartition[k]!)") }
            }
        }
    }
}

struct ForgetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "forget", abstract: "Erase every row of one user (GDPR), record the erasure, correct cost trends.")
    @OptionGroup var options: GlobalOptions
    @Option(help: "The user's id as the scanners send it (it is pseudonymized, never stored).") var user: String

    func run() async throws {
        try await withExitCodes {
            let config = try options.load()
            let key = try loadKey(config)
            guard !user.trimmingCharacters(in: .whitespaces).isEmpty else { throw UsageFailure("--user must not be empty") }
            let userHash = Pseudonymizer(key: key).pseudonym(.user, user)
            let db = try PostgresConnection(connectionString: config.postgresURL)
            try Migrator(schema: config.postgresSchema).migrate(db)
            let (report, emissions) = try UserForgetting.forget(userHash: userHash, keyId: key.keyId, config: config, connection: db)
            if !emissions.isEmpty, let producer = try? KafkaProducer(config: config.kafkaConfig, logger: makeLogger("cloudwaste.forget")) {
                // Best effort: rows left unpublished go out with the daemon's next round.
                let windows = CostTrendWindows(connection: db, settings: CostTrendWindows.Settings(config: config))
                try? TrendPublisher(producer: producer, windows: windows, topic: config.costTrendTopic).publish(emissions)
            }
            print("erased user \(userHash.hex.prefix(12))…: \(report)  (\(emissions.count) cost-trend rows corrected)")
        }
    }
}
