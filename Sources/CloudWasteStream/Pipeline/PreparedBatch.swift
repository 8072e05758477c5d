public import CloudWasteKafka

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
    /// Next offset PostgreSQL must hold now (-1: nothing committed yet).
    public var startOffset: Int64
    /// Next offset to store after this batch.
    public var nextOffset: Int64
    /// Latest event time seen in this span (for the window watermark).
    public var maxEventTime: Timestamp?
}

/// A record that could not be accepted, with what the dead-letter topic and table need.
public struct DeadLetter: Sendable {
    public var rejection: RecordRejection
    public var key: [UInt8]?
    public var value: [UInt8]?
}

/// What one consumed message became.
public enum BatchOutcome: Sendable {
    case row(AnonymizedRecord)
    case deadLetter(DeadLetter)
}

public struct BatchItem: Sendable {
    public var source: SourcePosition
    public var outcome: BatchOutcome
    public var eventTime: Timestamp?
}

/// One unit of exactly-once work: the outcome of every message, in poll order, plus the
/// partition spans they advance. Built on the consumer thread, written by `BatchWriter` in one
/// PostgreSQL transaction. Because items keep their order, a batch can be split anywhere
/// (bisection after a database rejection) and each part still advances offsets contiguously.
public struct PreparedBatch: Sendable {
    public var spans: [PartitionSpan]
    public var items: [BatchItem]
    public var keyId: String
    public var payloadBytes: Int

    public init(spans: [PartitionSpan], items: [BatchItem], keyId: String, payloadBytes: Int = 0) {
        self.spans = spans
        self.items = items
        self.keyId = keyId
        self.payloadBytes = payloadBytes
    }

    public var isEmpty: Bool { items.isEmpty }

    /// Splits after `count` items; the second part's spans start where the first part's end.
    public func split(at count: Int) -> (PreparedBatch, PreparedBatch) {
        let first = Array(items[..<count])
        let second = Array(items[count...])
        var firstSpans: [PartitionSpan] = []
        var secondSpans: [PartitionSpan] = []
        for span in spans {
            let mine = first.filter { $0.source.topicPartition == span.partition }
            let theirs = second.filter { $0.source.topicPartition == span.partition }
            let firstNext = mine.last.map { $0.source.offset + 1 } ?? span.startOffset
            if !mine.isEmpty {
                firstSpans.append(PartitionSpan(partition: span.partition, generation: span.generation,
                                                startOffset: span.startOffset, nextOffset: firstNext,
                                                maxEventTime: mine.compactMap(\.eventTime).max()))
            }
            if !theirs.isEmpty || mine.isEmpty {
                secondSpans.append(PartitionSpan(partition: span.partition, generation: span.generation,
                                                 startOffset: firstNext, nextOffset: span.nextOffset,
                                                 maxEventTime: theirs.compactMap(\.eventTime).max()))
            }
        }
        return (PreparedBatch(spans: firstSpans, items: first, keyId: keyId),
                PreparedBatch(spans: secondSpans, items: second, keyId: keyId))
    }

    /// The batch without the records of `partitions` (after they were fenced).
    public func removing(_ partitions: Set<TopicPartition>) -> PreparedBatch {
        PreparedBatch(spans: spans.filter { !partitions.contains($0.partition) },
                      items: items.filter { !partitions.contains($0.source.topicPartition) },
                      keyId: keyId, payloadBytes: payloadBytes)
    }
}

/// Turns consumed messages into a `PreparedBatch`: decode, validate, anonymize. Pure apart from
/// the clock inside the decoder; owns the thread's `Anonymizer`.
public final class BatchBuilder {
    public let decoder: RecordDecoder
    public let anonymizer: Anonymizer
    private let topics: [String: InputTopic]
    private var items: [BatchItem] = []
    private var spans: [TopicPartition: PartitionSpan] = [:]
    private var spanOrder: [TopicPartition] = []
    private var payloadBytes = 0

    public init(decoder: RecordDecoder, anonymizer: Anonymizer, topicNames: [String: InputTopic]) {
        self.decoder = decoder
        self.anonymizer = anonymizer
        self.topics = topicNames
    }

    public var count: Int { items.count }

    /// Adds one message of a partition owned at `generation`; `expectedOffset` is where
    /// PostgreSQL's offset stands for this partition when this span started.
    public func add(_ message: KafkaMessage, generation: Int64, expectedOffset: Int64) {
        let tp = message.topicPartition
        let source = SourcePosition(topic: message.topic, partition: message.partition, offset: message.offset)
        var item: BatchItem
        if let topic = topics[message.topic] {
            do {
                let record = try decoder.decode(topic, message.value)
                let row = anonymizer.anonymize(record)
                item = BatchItem(source: source, outcome: .row(row), eventTime: Self.eventTime(record))
            } catch {
                item = BatchItem(source: source, outcome: .deadLetter(DeadLetter(rejection: error, key: message.key, value: message.value)), eventTime: nil)
            }
        } else {
            item = BatchItem(source: source, outcome: .deadLetter(DeadLetter(rejection: RecordRejection(.unknownTopic), key: message.key, value: message.value)), eventTime: nil)
        }
        if spans[tp] == nil {
            spans[tp] = PartitionSpan(partition: tp, generation: generation, startOffset: expectedOffset,
                                      nextOffset: message.offset + 1, maxEventTime: nil)
            spanOrder.append(tp)
        }
        spans[tp]!.nextOffset = message.offset + 1
        if let t = item.eventTime, spans[tp]!.maxEventTime.map({ t > $0 }) ?? true { spans[tp]!.maxEventTime = t }
        payloadBytes += message.value?.count ?? 0
        items.append(item)
    }

    /// Hands over what was added and starts a new batch.
    public func seal() -> PreparedBatch {
        let batch = PreparedBatch(spans: spanOrder.map { spans[$0]! }, items: items, keyId: anonymizer.keyId, payloadBytes: payloadBytes)
        items = []
        spans = [:]
        spanOrder = []
        payloadBytes = 0
        return batch
    }

    /// Drops what was added for `partitions` (revoked or fenced before sealing).
    public func discard(_ partitions: Set<TopicPartition>) {
        items.removeAll { partitions.contains($0.source.topicPartition) }
        for tp in partitions { spans[tp] = nil }
        spanOrder.removeAll { partitions.contains($0) }
    }

    static func eventTime(_ record: InputRecord) -> Timestamp? {
        switch record {
        case .scan(let r): r.detectedAt
        case .action(let r): r.actionAt
        case .lifecycle(let r): r.occurredAt
        case .metrics(let r): r.points.map(\.ts).max()
        case .privacy(let r): r.requestedAt
        }
    }
}
