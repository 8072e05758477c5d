public import CloudWasteKafka

/// A message decoded, validated and anonymized, or the reason it is rejected: what
/// `BatchBuilder` turns into rows.
public enum PreparedRecord: Equatable, Sendable {
    case anonymized(AnonymizedRecord, eventTime: Timestamp?)
    case rejected(RecordRejection)
}

/// The order-free part of building a batch: decode, validate and anonymize one message. It keeps
/// no batch state, so several can run side by side on one poll's messages (`ParallelPreparation`),
/// while everything that depends on order (spans, offsets, superseded keys, encoding) stays with
/// `BatchBuilder` on the consumer thread. Not thread-safe: its Anonymizer's HMAC keeps scratch
/// state, so each thread uses a preparer of its own.
public final class RecordPreparer {
    public let decoder: RecordDecoder
    public let anonymizer: Anonymizer
    private let topics: [String: InputTopic]
    /// Reused for every record this preparer decodes.
    private var tape = JSONTape()

    public init(decoder: RecordDecoder, anonymizer: Anonymizer, topicNames: [String: InputTopic]) {
        self.decoder = decoder
        self.anonymizer = anonymizer
        self.topics = topicNames
    }

    public func prepare(_ message: KafkaMessage) -> PreparedRecord {
        guard let topic = topics[message.topic] else { return .rejected(RecordRejection(.unknownTopic)) }
        do {
            let record = try decodeRecord(topic, message.value)
            return .anonymized(anonymizer.anonymize(record), eventTime: Self.eventTime(record))
        } catch {
            return .rejected(error)
        }
    }

    private func decodeRecord(_ topic: InputTopic, _ value: [UInt8]?) throws(RecordRejection) -> InputRecord {
        guard let value else { return try decoder.decode(topic, nil, tape: &tape) }
        return try value.withUnsafeBufferPointer { (bytes) throws(RecordRejection) -> InputRecord in
            try decoder.decode(topic, bytes, tape: &tape)
        }
    }

    /// The time a record speaks of, for the partition's event-time watermark.
    static func eventTime(_ record: InputRecord) -> Timestamp? {
        switch record {
        case .scan(let r): r.detectedAt
        case .action(let r): r.actionAt
        case .lifecycle(let r): r.occurredAt
        case .metrics(let r): r.points.map(\.ts).max()
        case .privacy(let r): r.requestedAt
        case .billed(let r): r.usageDate
        }
    }
}
