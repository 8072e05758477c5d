import CloudWasteKafka
import Foundation
import Logging

/// Holds the data topics' partitions back at each assignment until every privacy request
/// published before it has been applied, by whichever writer or instance owns its partition.
/// librdkafka fetches all topics at once, so without it a backlog's records could be judged
/// before the consent changes published ahead of them: an opt-in read late cannot re-admit
/// the records it covers that were dropped before it was known (docs/privacy.md), and the rows
/// would depend on the order of reading. "Applied" means that PostgreSQL's stored offset of every
/// privacy partition reached the high watermark seen at the assignment; privacy partitions are
/// never held, so the wait always ends, and it is bounded (`pipeline.privacy_catch_up_seconds`).
/// Which partitions are held is `PartitionStates`' to know; this decides which to hold and when
/// the wait is over. Owned by the consumer thread.
struct PrivacyCatchUp {
    /// The privacy topic; nil when this pipeline does not read it (nothing to wait for).
    let topic: String?
    let timeoutSeconds: Double
    /// Whether a partition without stored history starts at its end (`auto.offset.reset=latest`):
    /// then what it held before is never read, and is not waited for.
    let startsAtEnd: Bool
    /// Privacy partition → (low, high) watermarks to reach; nil until queried.
    private var targets: [Int32: (low: Int64, high: Int64)]?
    private var since = Date()

    init(topic: String?, timeoutSeconds: Double, startsAtEnd: Bool) {
        self.topic = timeoutSeconds > 0 ? topic : nil
        self.timeoutSeconds = timeoutSeconds
        self.startsAtEnd = startsAtEnd
    }

    /// The data partitions of a new assignment, to be held (assigned paused). The wait now
    /// covers what was published up to this assignment; it started with the first partitions
    /// held (`waiting`: some are held already).
    mutating func hold(_ partitions: [TopicPartition], waiting: Bool) -> Set<TopicPartition> {
        guard let topic else { return [] }
        let data = partitions.filter { $0.topic != topic }
        guard !data.isEmpty else { return [] }
        if !waiting { since = Date() }
        targets = nil
        return Set(data)
    }

    /// Checks how far the privacy partitions are applied: once they are (or the wait timed out),
    /// the `held` partitions are to be released, and it returns how long they waited (seconds);
    /// nil while they wait. Errors (a broker or PostgreSQL that does not answer) are retried at
    /// the next check.
    mutating func check(held: Int, consumer: KafkaConsumer, offsets: OffsetStore, logger: Logger) -> Double? {
        guard let topic, held > 0 else { return nil }
        let waited = Date().timeIntervalSince(since)
        if waited >= timeoutSeconds {
            logger.warning("privacy requests not applied within \(Int(timeoutSeconds)) s of the assignment; reading the data topics anyway (a late opt-in may not re-admit records read before it)",
                           metadata: ["held_partitions": "\(held)"])
            return waited
        }
        do {
            if targets == nil {
                let privacy = try consumer.partitions(of: topic, timeoutMs: 2000).map { TopicPartition(topic: topic, partition: $0) }
                var found: [Int32: (low: Int64, high: Int64)] = [:]
                for (tp, w) in try consumer.queryWatermarks(privacy, timeoutMs: 2000) { found[tp.partition] = w }
                targets = found
            }
            let stored = try offsets.nextOffsets(topic: topic)
            let pending = targets!.filter { p, w in
                guard let next = stored[p]?.offset else { return w.high > w.low && !startsAtEnd }
                return next < w.high
            }
            guard pending.isEmpty else { return nil }
            logger.info("privacy requests applied up to the assignment; reading \(held) data partitions",
                        metadata: ["waited_ms": "\(Int(waited * 1000))"])
            return waited
        } catch {
            logger.debug("privacy catch-up check failed; retrying", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
