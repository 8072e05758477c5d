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
    /// The last topic looked up (a poll's messages come in runs of one topic, with one String).
    private var lastTopic: (name: String, topic: InputTopic)?

    public init(decoder: RecordDecoder, anonymizer: Anonymizer, topicNames: [String: InputTopic]) {
        self.decoder = decoder
        self.anonymizer = anonymizer
        self.topics = topicNames
    }

    public func prepare(_ message: KafkaMessage) -> PreparedRecord {
        guard let topic = topic(of: message) else { return .rejected(RecordRejection(.unknownTopic)) }
        do {
            let record = try message.withValue { (bytes) throws(RecordRejection) in try decoder.decode(topic, bytes, tape: &tape, pseudonymizer: anonymizer.pseudonymizer) }
            let eventTime = Self.eventTime(record)
            return .anonymized(anonymizer.anonymize(record), eventTime: eventTime)
        } catch {
            return .rejected(error)
        }
    }

    private func topic(of message: KafkaMessage) -> InputTopic? {
        if let last = lastTopic, last.name == message.topic { return last.topic }
        guard let topic = topics[message.topic] else { return nil }
        lastTopic = (message.topic, topic)
        return topic
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
