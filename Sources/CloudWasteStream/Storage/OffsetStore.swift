public import CloudWasteKafka
public import CloudWastePostgres

/// The source of truth for where each partition stands (SPEC §5). Claiming a partition bumps its
/// generation, which fences any earlier owner; advancing it is conditional on that generation and
/// on the offset the batch started from, so a zombie's batch (or one that would leave a gap or an
/// overlap) finds no row to update and rolls back. Used on the connection of whoever holds it:
/// the consumer thread claims, each writer advances inside its batch transaction.
public struct OffsetStore {
    public struct Claim: Sendable, Equatable {
        /// Next offset to read, or nothing committed yet (start where librdkafka starts).
        public var nextOffset: NextOffset
        public var generation: Int64
    }

    private let db: PostgresConnection
    private let schema: PostgresIdentifier
    private let groupId: String
    private let owner: String

    public init(connection: PostgresConnection, schema: String, groupId: String, owner: String) {
        db = connection
        self.schema = PostgresIdentifier(schema)
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
            INSERT INTO \(schema).stream_offsets AS so (consumer_group, topic, partition, next_offset, generation, owner)
            SELECT \(groupId), t, p, -1, 1, \(owner)
              FROM unnest(\(sorted.map(\.topic))::text[], \(sorted.map(\.partition))::int[]) AS v(t, p)
            ON CONFLICT (consumer_group, topic, partition) DO UPDATE
               SET generation = so.generation + 1, owner = EXCLUDED.owner, updated_at = now()
            RETURNING topic, partition, next_offset, generation
            """)
        var out: [TopicPartition: Claim] = [:]
        for (topic, partition, next, generation) in try result.decodeRows(as: (String, Int32, Int64, Int64).self) {
            out[TopicPartition(topic: topic, partition: partition)] = Claim(nextOffset: NextOffset(stored: next), generation: generation)
        }
        return out
    }

    /// The committed next offset of every partition of `topic` in this group that has a row,
    /// whoever owns it.
    public func nextOffsets(topic: String) throws -> [Int32: NextOffset] {
        let result = try db.query("""
            SELECT partition, next_offset FROM \(schema).stream_offsets
             WHERE consumer_group = \(groupId) AND topic = \(topic)
            """)
        var out: [Int32: NextOffset] = [:]
        for (partition, next) in try result.decodeRows(as: (Int32, Int64).self) { out[partition] = NextOffset(stored: next) }
        return out
    }

    /// Inside the batch transaction: moves every span's offset forward, only where the span's
    /// generation and start offset still match. A statement, not a call, because the writer sends
    /// it with the batch's other opening statements in one round trip; `fenced(_:by:)` reads its
    /// result.
    public func advanceStatement(_ spans: [PartitionSpan]) -> PostgresQuery {
        let sorted = spans.sorted { $0.partition < $1.partition }
        return """
            UPDATE \(schema).stream_offsets AS so
               SET next_offset = v.next_offset,
                   max_event_time = GREATEST(so.max_event_time, v.max_event_time),
                   last_record_at = CASE WHEN v.max_event_time IS NULL THEN so.last_record_at ELSE now() END,
                   updated_at = now()
              FROM unnest(\(sorted.map(\.partition.topic))::text[], \(sorted.map(\.partition.partition))::int[],
                          \(sorted.map(\.generation))::bigint[], \(sorted.map(\.startOffset.stored))::bigint[],
                          \(sorted.map(\.nextOffset))::bigint[],
                          \(PostgresNullableArray(sorted.map { $0.maxEventTime?.postgresText }))::timestamptz[])
                   AS v(topic, partition, generation, start_offset, next_offset, max_event_time)
             WHERE so.consumer_group = \(groupId) AND so.topic = v.topic AND so.partition = v.partition
               AND so.generation = v.generation AND so.next_offset = v.start_offset
            RETURNING so.topic, so.partition
            """
    }

    /// The spans' partitions that `advanceStatement(spans)` did not move (fenced).
    public func fenced(_ spans: [PartitionSpan], by result: PostgresResult) throws(PostgresError) -> Set<TopicPartition> {
        var matched = Set<TopicPartition>()
        for (topic, partition) in try result.decodeRows(as: (String, Int32).self) {
            matched.insert(TopicPartition(topic: topic, partition: partition))
        }
        return Set(spans.map(\.partition)).subtracting(matched)
    }
}
