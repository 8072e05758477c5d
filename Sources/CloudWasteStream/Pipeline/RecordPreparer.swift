public import CloudWasteKafka

/// What a message became once decoded, validated, anonymized and encoded: its rows (in the
/// `PreparedRows` it was prepared into) and what the batch needs to know of them, or the reason
/// it is rejected. A few words (its strings are short, held inline), so it moves between threads
/// cheaply; the record itself stays on the thread that prepared it.
public struct PreparedRecord: Equatable, Sendable {
    /// The rare outcomes are boxed (`indirect`): a prepared record is copied a few times on its
    /// way into a batch, and a privacy row inline made every one of them twice as large.
    public enum Outcome: Equatable, Sendable {
        /// Rows in one table.
        case rows(BatchTable)
        indirect case privacy(PrivacyRow)
        indirect case rejected(RecordRejection)
    }

    public var outcome: Outcome
    /// The time the record speaks of (nil when rejected), for the partition's watermark.
    public var eventTime: Timestamp?
    /// Its rows (and a detection's contribution to the window state), as indices of `PreparedRows.rows`.
    var rows: Range<Int> = 0..<0
    /// The user the rows belong to, for the batch's privacy locks.
    var user: Pseudonym?

    init(outcome: Outcome, eventTime: Timestamp?) {
        self.outcome = outcome
        self.eventTime = eventTime
    }
}

/// The order-free part of building a batch: decode, validate, anonymize and encode one message.
/// It keeps no batch state, so several can run side by side on one poll's messages
/// (`ParallelPreparation`), while everything that depends on order (spans, offsets, superseded
/// keys) stays with `BatchBuilder` on the consumer thread. Not thread-safe: its Anonymizer's HMAC
/// and its recycled arrays are scratch state, so each thread uses a preparer of its own.
public final class RecordPreparer {
    public let decoder: RecordDecoder
    public let anonymizer: Anonymizer
    private let topics: [String: InputTopic]
    /// Reused for every record this preparer decodes.
    private var tape = JSONTape()
    /// The arrays of the last records encoded (a scan's summaries and tag keys, a metrics
    /// record's points), for the next ones.
    private let arrays = RecycledArrays()
    /// The last topic looked up (a poll's messages come in runs of one topic, with one String).
    private var lastTopic: (name: String, topic: InputTopic)?

    public init(decoder: RecordDecoder, anonymizer: Anonymizer, topicNames: [String: InputTopic]) {
        self.decoder = decoder
        self.anonymizer = anonymizer
        self.topics = topicNames
    }

    /// Prepares `message`, appending its rows to `rows`.
    public func prepare(_ message: KafkaMessage, into rows: inout PreparedRows) -> PreparedRecord {
        guard let topic = topic(of: message) else { return PreparedRecord(outcome: .rejected(RecordRejection(.unknownTopic)), eventTime: nil) }
        do {
            let record = try message.withValue { (bytes) throws(RecordRejection) in
                try decoder.decode(topic, bytes, tape: &tape, pseudonymizer: anonymizer.pseudonymizer, arrays: arrays)
            }
            let source = SourcePosition(topic: message.topic, partition: message.partition, offset: message.offset)
            return rows.append(anonymizer.anonymize(record), source: source, keyId: anonymizer.keyId, recycling: arrays)
        } catch {
            return PreparedRecord(outcome: .rejected(error), eventTime: nil)
        }
    }

    private func topic(of message: KafkaMessage) -> InputTopic? {
        if let last = lastTopic, last.name == message.topic { return last.topic }
        guard let topic = topics[message.topic] else { return nil }
        lastTopic = (message.topic, topic)
        return topic
    }
}
