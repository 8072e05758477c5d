public import CloudWasteKafka
public import CloudWastePostgres
public import Foundation

/// Everything the demo, the benchmark and the integration tests need without any set-up: a mock
/// Kafka cluster with the project's topics, and a scratch PostgreSQL with a database.
public final class LocalEnvironment: @unchecked Sendable {
    public let kafka: KafkaMockCluster
    public let postgres: ScratchPostgres
    public let databaseURL: String

    /// Suggested partition counts (topics/*/topic.json); the benchmark asks for more.
    public static let defaultPartitions: [InputTopic: Int] = [
        .scanResources: 12, .userActions: 6, .resourceLifecycle: 6, .metricSamples: 6, .privacyRequests: 3,
    ]

    public init(stateDirectory: URL, topicPrefix: String = "cloudwaste.", partitions: [InputTopic: Int] = defaultPartitions,
                durablePostgres: Bool = false, database: String = "cloudwaste") throws {
        ScratchPostgres.stopLeftover(in: stateDirectory.appendingPathComponent("postgres"))
        try? FileManager.default.removeItem(at: stateDirectory)
        try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        postgres = try ScratchPostgres(directory: stateDirectory.appendingPathComponent("postgres"), durable: durablePostgres)
        try postgres.start()
        let admin = try PostgresConnection(connectionString: postgres.url())
        try admin.execute("CREATE DATABASE \(PostgresQuery.quoteIdentifier(database))")
        admin.close()
        databaseURL = postgres.url(database: database)
        kafka = try KafkaMockCluster(brokers: 3)
        for topic in InputTopic.allCases {
            try kafka.createTopic(topic.name(prefix: topicPrefix), partitions: partitions[topic] ?? 6)
        }
        try kafka.createTopic("\(topicPrefix)cost-trends.v1", partitions: 3)
        try kafka.createTopic("\(topicPrefix)dead-letters.v1", partitions: 3)
    }

    /// `keepFiles` leaves the stopped server's folder (and its log) for inspection.
    /// Partitions per topic so that the mock broker keeps everything: it retains only ~5 MiB per
    /// partition, and account keys do not spread evenly, so aim at ~1 MiB per partition.
    public static func partitions(for messages: [TrafficGenerator.Message]) -> [InputTopic: Int] {
        var bytes: [InputTopic: Int] = [:]
        for m in messages { bytes[m.topic, default: 0] += m.value.count + 100 }
        var parts = defaultPartitions
        for t in InputTopic.allCases { parts[t] = max(parts[t] ?? 3, (bytes[t] ?? 0) / 1_048_576 + 1) }
        return parts
    }

    public func shutdown(keepFiles: Bool = false) {
        kafka.shutdown()
        if keepFiles { try? postgres.stop() } else { postgres.destroy() }
    }

    /// Publishes generated traffic; returns how many messages were sent.
    @discardableResult
    public static func publish(_ messages: [TrafficGenerator.Message], bootstrap: String, topicPrefix: String = "cloudwaste.") throws -> Int {
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": bootstrap]), logger: .init(label: "cloudwaste.generator"))
        for m in messages {
            try producer.send(topic: m.topic.name(prefix: topicPrefix), key: Array(m.key.utf8), value: m.value)
        }
        try producer.flush(timeoutMs: 60_000)
        return messages.count
    }
}
