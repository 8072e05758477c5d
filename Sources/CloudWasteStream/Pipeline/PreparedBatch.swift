public import CloudWasteKafka
import CloudWastePostgres

/// Where a row came from (kept in every table for audit and deterministic tie-breaks).
public struct SourcePosition: Hashable, Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64

    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
}

/// The part of one partition a batch covers. The batch commits only if PostgreSQL still says this
/// instance (generation) owns the partition and that it stands at `startOffset`.
public struct PartitionSpan: Sendable, Equatable {
    public var partition: TopicPartition
    public var generation: Int64
    /// Where PostgreSQL must stand now for this span to be the next one.
    public var startOffset: NextOffset
    /// Next offset to store after this batch.
    public var nextOffset: Int64
    /// Latest event time seen in this span (for the window watermark).
    public var maxEventTime: Timestamp?
}

/// A record that could not be accepted, with what the dead-letter topic needs after the commit.
public struct DeadLetter: Sendable {
    public var rejection: RecordRejection
    public var key: [UInt8]?
    public var value: [UInt8]?
}

/// What one consumed message became. The rare outcomes are boxed (`indirect`), so that a batch's
/// items, one per message, stay small.
public enum BatchOutcome: Sendable {
    /// Rows in one table (none when every row was superseded in the batch).
    case rows(BatchTable)
    indirect case privacy(PrivacyRow)
    indirect case deadLetter(DeadLetter)
}

public struct BatchItem: Sendable {
    public var source: SourcePosition
    public var outcome: BatchOutcome
    public var eventTime: Timestamp?
    /// Size of the message's value.
    public var payloadBytes: Int = 0
}

/// One unit of exactly-once work: the outcome of every message in poll order, the rows already
/// encoded per table, and the partition spans they advance. Built on the consumer thread,
/// written by one `BatchWriter` in one PostgreSQL transaction (two when it carries privacy
/// requests and other records: `transactions`). Items keep their order, so a batch
/// can be split anywhere (bisection after a database rejection) and each part still advances
/// offsets contiguously.
public struct PreparedBatch: Sendable {
    public var spans: [PartitionSpan]
    public var items: [BatchItem]
    /// Indexed by `BatchTable.rawValue`.
    public var tables: [EncodedRows]
    public var keyId: String
    /// Pseudonyms of the users whose records the batch stores (a superset after a split): the
    /// privacy locks it takes.
    public var users: Set<Pseudonym>

    public init(spans: [PartitionSpan], items: [BatchItem], tables: [EncodedRows] = BatchTable.allCases.map { _ in EncodedRows() },
                keyId: String, users: Set<Pseudonym> = []) {
        self.spans = spans
        self.items = items
        self.tables = tables
        self.keyId = keyId
        self.users = users
    }

    /// Bytes of the consumed values.
    public var payloadBytes: Int { items.reduce(0) { $0 + $1.payloadBytes } }

    /// What the batch holds in memory, roughly: encoded rows plus the raw bytes kept for dead letters.
    public var memoryBytes: Int {
        encodedBytes + items.reduce(0) { if case .deadLetter(let d) = $1.outcome { $0 + (d.value?.count ?? 0) + (d.key?.count ?? 0) } else { $0 } }
    }

    public var isEmpty: Bool { items.isEmpty }

    public subscript(table: BatchTable) -> EncodedRows {
        get { tables[table.rawValue] }
        set { tables[table.rawValue] = newValue }
    }

    /// Rows over every table.
    public var rowCount: Int { tables.reduce(0) { $0 + $1.count } }

    /// Encoded bytes over every table.
    public var encodedBytes: Int { tables.reduce(0) { $0 + $1.byteCount } }

    public var privacyRequests: [PrivacyRow] {
        items.compactMap { if case .privacy(let p) = $0.outcome { p } else { nil } }
    }

    public var deadLetters: [(source: SourcePosition, letter: DeadLetter)] {
        items.compactMap { if case .deadLetter(let d) = $0.outcome { ($0.source, d) } else { nil } }
    }

    /// Splits after `count` items; the second part's spans start where the first part's end.
    public func split(at count: Int) -> (PreparedBatch, PreparedBatch) {
        let first = Array(items[..<count])
        let second = Array(items[count...])
        var firstSpans: [PartitionSpan] = []
        var secondSpans: [PartitionSpan] = []
        for span in spans {
            let mine = first.filter { $0.source.topicPartition == span.partition }
            let theirs = second.filter { $0.source.topicPartition == span.partition }
            let firstNext = mine.last.map { NextOffset.at($0.source.offset + 1) } ?? span.startOffset
            if let last = mine.last {
                firstSpans.append(PartitionSpan(partition: span.partition, generation: span.generation,
                                                startOffset: span.startOffset, nextOffset: last.source.offset + 1,
                                                maxEventTime: mine.compactMap(\.eventTime).max()))
            }
            if !theirs.isEmpty || mine.isEmpty {
                secondSpans.append(PartitionSpan(partition: span.partition, generation: span.generation,
                                                 startOffset: firstNext, nextOffset: span.nextOffset,
                                                 maxEventTime: theirs.compactMap(\.eventTime).max()))
            }
        }
        return (PreparedBatch(spans: firstSpans, items: first, tables: tables.map { $0.filtered { $0 < count ? $0 : nil } }, keyId: keyId, users: users),
                PreparedBatch(spans: secondSpans, items: second, tables: tables.map { $0.filtered { $0 >= count ? $0 - count : nil } }, keyId: keyId, users: users))
    }

    /// The batch as the transactions it is written in, in order: the records of the partitions
    /// that carry privacy requests first, then the rest (or the batch itself when it holds only one
    /// kind). A privacy request holds its user's lock exclusively until its transaction commits,
    /// so every other writer's batch with a user in that bucket (a batch of thousands of records
    /// has most buckets) waits for it, and a batch with a request cannot copy its detections
    /// straight in. Offsets are per partition and the privacy partitions carry nothing else, so
    /// each part still commits its own offsets exactly once; the data part, committed after the
    /// requests, is judged by them as it was in one transaction.
    public func transactions() -> [PreparedBatch] {
        var privacyPartitions: Set<TopicPartition> = []
        for item in items { if case .privacy = item.outcome { privacyPartitions.insert(item.source.topicPartition) } }
        guard !privacyPartitions.isEmpty else { return [self] }
        let other = Set(spans.map(\.partition)).subtracting(privacyPartitions)
        guard !other.isEmpty else { return [self] }
        var requests = removing(other)
        requests.users = []  // its requests' users are locked exclusively; it stores no one's records
        return [requests, removing(privacyPartitions)]
    }

    /// The batch without the records of `partitions` (after they were fenced).
    public func removing(_ partitions: Set<TopicPartition>) -> PreparedBatch {
        guard !partitions.isEmpty else { return self }
        var newIndex = [Int?](repeating: nil, count: items.count)
        var kept: [BatchItem] = []
        for (i, item) in items.enumerated() where !partitions.contains(item.source.topicPartition) {
            newIndex[i] = kept.count
            kept.append(item)
        }
        return PreparedBatch(spans: spans.filter { !partitions.contains($0.partition) }, items: kept,
                             tables: tables.map { $0.filtered { newIndex[$0] } }, keyId: keyId, users: users)
    }

    /// The batch with item `index` turned into a dead letter (a row PostgreSQL rejected): its rows
    /// are dropped and a dead_letters row takes their place.
    public func deadLettering(item index: Int, rejection: RecordRejection, consumerGroup: String) -> PreparedBatch {
        var out = self
        out.tables = tables.map { $0.filtered { $0 == index ? nil : $0 } }
        out.items[index].outcome = .deadLetter(DeadLetter(rejection: rejection, key: nil, value: nil))
        let row = DeadLetterRow(source: items[index].source, rejection: rejection, payloadSHA256: nil, payloadBytes: 0,
                                keySHA256: nil, consumerGroup: consumerGroup)
        out[.deadLetters].append(item: index) { TableDescription.deadLetters.encode(row, into: &$0) }
        return out
    }
}
