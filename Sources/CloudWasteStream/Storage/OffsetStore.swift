public import CloudWasteKafka
public import CloudWastePostgres

/// The source of truth for where each partition stands (SPEC §5). Claiming a partition bumps its
/// generation, which fences any earlier owner: that owner's next batch transaction finds a
/// different generation and rolls back.
public final class OffsetStore {
    public struct Claim: Sendable, Equatable {
        /// Next offset to read; nil when nothing was ever committed (start from Kafka's position).
        public var nextOffset: Int64?
        public var generation: Int64
    }

    private let db: PostgresConnection
    private let schema: String
    private let groupId: String
    private let owner: String

    public init(connection: PostgresConnection, schema: String, groupId: String, owner: String) {
        db = connection
        self.schema = PostgresQuery.quoteIdentifier(schema)
        self.groupId = groupId
        self.owner = owner
    }

    public func reconnect() throws { try db.reconnect() }

    /// Takes ownership of `partitions`. Waits for a batch of an earlier owner that holds the row
    /// lock, so the offset read is the one that owner committed.
    public func claim(_ partitions: [TopicPartition]) throws -> [TopicPartition: Claim] {
        guard !partitions.isEmpty else { return [:] }
        let sorted = partitions.sorted()
        let result = try db.query("""
            INSERT INTO \(unescaped: schema).stream_offsets AS so (consumer_group, topic, partition, next_offset, generation, owner)
            SELECT \(groupId), t, p, -1, 1, \(owner)
              FROM unnest(\(sorted.map(\.topic))::text[], \(sorted.map { String($0.partition) })::int[]) AS v(t, p)
            ON CONFLICT (consumer_group, topic, partition) DO UPDATE
               SET generation = so.generation + 1, owner = EXCLUDED.owner, updated_at = now()
            RETURNING topic, partition, next_offset, generation
            """)
        var out: [TopicPartition: Claim] = [:]
        for r in 0..<result.rowCount {
            let next = Int64(result.int(r, 2)!)
            out[TopicPartition(topic: result.string(r, 0)!, partition: Int32(result.int(r, 1)!))] =
                Claim(nextOffset: next < 0 ? nil : next, generation: Int64(result.int(r, 3)!))
        }
        return out
    }
}
