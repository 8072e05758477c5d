public import CloudWasteKafka
public import Logging
import Foundation

/// High watermark minus PostgreSQL's committed offset, per partition, for one-shot commands: every
/// Kafka call is bounded (one metadata probe of a few seconds, then a budget for all watermarks),
/// so an unreachable cluster costs seconds and says so instead of hanging.
public enum ConsumerLag {
    public struct Result: Sendable {
        public var perPartition: [String: Int] = [:]
        /// Why lag is unknown (or partly unknown), for the operator.
        public var unknownBecause: String?
    }

    public static func measure(config: StreamConfig, offsets: [StatsReport.PartitionOffset],
                               logger: Logger, budgetSeconds: Double = 10) -> Result {
        guard !offsets.isEmpty else { return Result(unknownBecause: "nothing consumed yet") }
        var kc = config.kafkaConfig
        kc["group.id"] = "\(config.groupId)-stats"
        var quiet = logger
        quiet.logLevel = .critical  // an unreachable cluster would log a line per broker and retry
        guard let consumer = try? KafkaConsumer(config: kc, logger: quiet) else {
            return Result(unknownBecause: "Kafka client could not be created")
        }
        defer { consumer.close(timeoutMs: 500) }
        let deadline = Date(timeIntervalSinceNow: budgetSeconds)
        do {
            _ = try consumer.partitions(of: offsets[0].topic, timeoutMs: 3000)
        } catch {
            return Result(unknownBecause: "Kafka not reachable (\(consumer.diagnosis ?? error.message))")
        }
        var out = Result()
        for o in offsets {
            let left = Int32(deadline.timeIntervalSinceNow * 1000)
            guard left > 0 else {
                out.unknownBecause = "Kafka too slow: lag of \(offsets.count - out.perPartition.count) partitions unknown"
                break
            }
            let tp = TopicPartition(topic: o.topic, partition: Int32(o.partition))
            if let (_, high) = try? consumer.queryWatermarks(tp, timeoutMs: min(2000, left)) {
                out.perPartition[tp.description] = max(0, Int(high) - max(o.nextOffset, 0))
            }
        }
        return out
    }
}
