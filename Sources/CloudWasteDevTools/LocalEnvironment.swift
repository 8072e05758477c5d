import CloudWasteKafka
public import CloudWasteStream
import CloudWastePostgres
public import Foundation

/// Everything the demo, the benchmark and the integration tests need without any set-up: a mock
/// Kafka cluster with the project's topics, and a scratch PostgreSQL with a database.
public final class LocalEnvironment: Sendable {
    public let kafka: KafkaMockCluster
    public let postgres: ScratchPostgres
    public let databaseURL: String

    /// Suggested partition counts (topics/*/topic.json); the benchmark asks for more.
    public static let defaultPartitions: [InputTopic: Int] = [
        .scanResources: 12, .userActions: 6, .resourceLifecycle: 6, .metricSamples: 6, .privacyRequests: 3,
    ]

    public init(stateDirectory: URL, topicPrefix: String = "cloudwaste.", partitions: [InputTopic: Int] = defaultPartitions,
                durablePostgres: Bool = false, database: String = "cloudwaste") async throws {
        ScratchPostgres.stopLeftover(in: stateDirectory.appendingPathComponent("postgres"))
        try? FileManager.default.removeItem(at: stateDirectory)
        try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        postgres = try ScratchPostgres(directory: stateDirectory.appendingPathComponent("postgres"), durable: durablePostgres)
        try await postgres.start()
        let admin = try PostgresConnection(connectionString: postgres.url())
        try admin.query("CREATE DATABASE \(PostgresIdentifier(database))")
        admin.close()
        databaseURL = postgres.url(database: database)
        kafka = try KafkaMockCluster(brokers: 3)
        for (name, n) in Self.topics(prefix: topicPrefix, partitions: partitions) {
            try kafka.createTopic(name, partitions: n)
        }
    }

    /// Every topic the project uses under `prefix`, with its partition count: the input topics
    /// (`partitions`, else 6) and the two output topics.
    public static func topics(prefix: String, partitions: [InputTopic: Int]) -> [String: Int] {
        var out: [String: Int] = [:]
        for topic in InputTopic.allCases { out[topic.name(prefix: prefix)] = partitions[topic] ?? 6 }
        out["\(prefix)cost-trends.v1"] = 3
        out["\(prefix)dead-letters.v1"] = 3
        return out
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

    /// Keys packed into as few partitions as keep every topic under `maxBytes` per partition (the
    /// mock broker keeps about 5 MiB of each): each key still lives on one partition, but the
    /// partitions are even, so a large run needs no more of them than retention asks for (the
    /// mock's cost grows with the partition count).
    public struct KeyLayout: Sendable {
        public var partitions: [InputTopic: Int]
        public var partitionOfKey: [InputTopic: [String: Int32]]
    }

    public static func packedLayout(for messages: [TrafficGenerator.Message], maxBytes: Int = 4 << 20) -> KeyLayout {
        var bytes: [InputTopic: [String: Int]] = [:]
        for m in messages { bytes[m.topic, default: [:]][m.key, default: 0] += m.value.count + 100 }
        var layout = KeyLayout(partitions: [:], partitionOfKey: [:])
        for topic in InputTopic.allCases {
            let keys = (bytes[topic] ?? [:]).sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            let total = keys.reduce(0) { $0 + $1.value }
            let count = max(defaultPartitions[topic] ?? 3, total / maxBytes + 1)
            var load = [Int](repeating: 0, count: count)
            var assignment: [String: Int32] = [:]
            for (key, size) in keys {
                let p = load.indices.min { load[$0] < load[$1] }!
                load[p] += size
                assignment[key] = Int32(p)
            }
            layout.partitions[topic] = count
            layout.partitionOfKey[topic] = assignment
        }
        return layout
    }

    /// Publishes generated traffic (to the partition `layout` gives a key, else by key hash);
    /// returns how many messages were sent.
    @discardableResult
    public static func publish(_ messages: [TrafficGenerator.Message], bootstrap: String, topicPrefix: String = "cloudwaste.",
                               layout: KeyLayout? = nil) throws -> Int {
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": bootstrap]), logger: .init(label: "cloudwaste.generator"))
        for m in messages {
            try producer.send(topic: m.topic.name(prefix: topicPrefix), partition: layout?.partitionOfKey[m.topic]?[m.key],
                              key: Array(m.key.utf8), value: m.value)
        }
        try producer.flush(timeoutMs: 60_000)
        return messages.count
    }
}
