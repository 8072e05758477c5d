public import CloudWasteKafka
import Foundation

/// Publishes changed cost-trend rows to the cost-trend topic after their commit, keyed by
/// `account_hash:month:currency` (a deleted row as a tombstone), and records the published revision. A
/// row whose publication fails stays `emitted_revision < revision` and is published later.
public struct TrendPublisher {
    let producer: KafkaProducer
    let windows: CostTrendWindows
    let topic: String

    public init(producer: KafkaProducer, windows: CostTrendWindows, topic: String) {
        self.producer = producer
        self.windows = windows
        self.topic = topic
    }

    public func publish(_ emissions: [TrendEmission], timeoutMs: Int32 = 10_000) throws {
        guard !emissions.isEmpty else { return }
        for e in emissions {
            try producer.send(topic: topic, key: Array(e.key.utf8), value: e.json.isEmpty ? nil : Array(e.json.utf8))
        }
        try producer.flush(timeoutMs: timeoutMs)
        try windows.markPublished(emissions)
    }

    /// Publishes one tombstone per key from before SPEC v1.1 (`account_hash:month`, a sum over
    /// every currency), so that a compacted topic drops them; returns how many.
    public func retireLegacyKeys(timeoutMs: Int32 = 10_000) throws -> Int {
        let keys = try windows.legacyTrendKeys()
        guard !keys.isEmpty else { return 0 }
        for key in keys { try producer.send(topic: topic, key: Array(key.utf8), value: nil) }
        try producer.flush(timeoutMs: timeoutMs)
        try windows.retireLegacyTrendKeys(keys)
        return keys.count
    }
}
