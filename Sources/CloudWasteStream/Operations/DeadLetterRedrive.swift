public import CloudWasteKafka
public import CloudWastePostgres
import Foundation

/// `cloudwaste-stream dlq`: list, inspect and re-drive dead letters. The table has the metadata;
/// the raw bytes live only in the dead-letter topic, so re-driving reads them back from there
/// (matched by the source-position headers and the payload digest) and publishes them to their
/// source topic, where they are processed like any new record. A dead letter is re-driven once
/// (`redriven_at`), unless forced.
public struct DeadLetterRedrive {
    public struct Entry: Sendable {
        public var source: SourcePosition
        public var reason: String
        public var payloadSHA256: String?
        public var payloadBytes: Int
        public var receivedAt: String
        public var redrivenAt: String?
    }

    let db: PostgresConnection
    let schema: PostgresIdentifier
    let config: StreamConfig

    public init(db: PostgresConnection, config: StreamConfig) {
        self.db = db
        self.schema = PostgresIdentifier(config.postgresSchema)
        self.config = config
    }

    /// Dead letters, newest first, filtered by reason prefix and/or exact source positions.
    public func list(reasonPrefix: String? = nil, sources: [SourcePosition] = [], includeRedriven: Bool = true, limit: Int = 100) throws -> [Entry] {
        let positions = sources.map { "\($0.topic):\($0.partition):\($0.offset)" }
        let r = try db.query("""
            SELECT source_topic, source_partition, source_offset, reason, payload_sha256, payload_bytes,
                   to_char(received_at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), to_char(redriven_at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
              FROM \(schema).dead_letters
             WHERE (\(reasonPrefix ?? "")::text = '' OR reason LIKE \(reasonPrefix ?? "") || '%')
               AND (cardinality(\(positions)::text[]) = 0
                    OR source_topic || ':' || source_partition || ':' || source_offset = ANY(\(positions)::text[]))
               AND (\(includeRedriven) OR redriven_at IS NULL)
             ORDER BY received_at DESC, source_topic, source_partition, source_offset LIMIT \(limit)
            """)
        return try r.decodeRows(as: (String, Int32, Int64, String, String?, Int, String, String?).self).map {
            Entry(source: SourcePosition(topic: $0, partition: $1, offset: $2), reason: $3, payloadSHA256: $4, payloadBytes: $5,
                  receivedAt: $6, redrivenAt: $7)
        }
    }

    /// Publishes the selected dead letters' original bytes to their source topics; returns how
    /// many were re-driven and which could not be found in the dead-letter topic (expired).
    public func redrive(_ entries: [Entry], force: Bool = false) throws -> (redriven: Int, missing: [SourcePosition]) {
        let wanted = Dictionary(entries.filter { force || $0.redrivenAt == nil }.map { ($0.source, $0) }, uniquingKeysWith: { a, _ in a })
        guard !wanted.isEmpty else { return (0, []) }
        var kc = config.kafkaConfig
        kc["group.id"] = "\(config.groupId)-dlq-redrive"
        let consumer = try KafkaConsumer(config: kc, logger: .init(label: "cloudwaste.dlq"))
        defer { consumer.close(timeoutMs: 2000) }
        let topic = config.deadLetterTopic
        var offsets: [TopicPartition: Int64] = [:]
        var ends: [TopicPartition: Int64] = [:]
        for p in try consumer.partitions(of: topic) {
            let tp = TopicPartition(topic: topic, partition: p)
            let (low, high) = try consumer.queryWatermarks(tp)
            if high > low { offsets[tp] = KafkaOffset.beginning; ends[tp] = high }
        }
        let producer = try KafkaProducer(config: config.kafkaConfig, logger: .init(label: "cloudwaste.dlq"))
        var found = Set<SourcePosition>()
        if !offsets.isEmpty {
            try consumer.assign(offsets)
            var done = Set<TopicPartition>()
            while done.count < ends.count {
                let batch = try consumer.poll(maxMessages: 5000, timeoutMs: 5000)
                if batch.isEmpty { break }
                for m in batch {
                    if m.offset + 1 >= ends[m.topicPartition] ?? 0 { done.insert(m.topicPartition) }
                    guard let source = Self.source(of: m), let entry = wanted[source], !found.contains(source) else { continue }
                    if let digest = entry.payloadSHA256, m.value.map(sha256Hex) != digest { continue }
                    try producer.send(topic: source.topic, key: m.key, value: m.value)
                    found.insert(source)
                }
            }
        }
        try producer.flush()
        let positions = found.map { "\($0.topic):\($0.partition):\($0.offset)" }
        try db.query("""
            UPDATE \(schema).dead_letters SET redriven_at = now()
             WHERE source_topic || ':' || source_partition || ':' || source_offset = ANY(\(positions)::text[])
            """)
        return (found.count, wanted.keys.filter { !found.contains($0) }.sorted { ($0.topic, $0.partition, $0.offset) < ($1.topic, $1.partition, $1.offset) })
    }

    /// The source position recorded in a dead-letter message's headers.
    static func source(of m: KafkaMessage) -> SourcePosition? {
        guard let h = m.headers,
              let topic = h["cw.source.topic"].map({ String(decoding: $0, as: UTF8.self) }),
              let partition = h["cw.source.partition"].flatMap({ Int32(String(decoding: $0, as: UTF8.self)) }),
              let offset = h["cw.source.offset"].flatMap({ Int64(String(decoding: $0, as: UTF8.self)) }) else { return nil }
        return SourcePosition(topic: topic, partition: partition, offset: offset)
    }
}
