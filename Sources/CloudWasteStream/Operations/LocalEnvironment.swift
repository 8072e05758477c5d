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

    public func shutdown() {
        kafka.shutdown()
        postgres.destroy()
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
