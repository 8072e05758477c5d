import CloudWasteKafka
import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// What the consumer asks the cluster about offsets, against the mock cluster's three brokers:
/// watermarks of several partitions in one call (the privacy catch-up), and logical offsets
/// turned into concrete ones for the partitions an assignment starts paused and for a seek
/// (librdkafka's own lookup would be outdated by the pause or resume that follows, and retried
/// only after half a second).
@Suite(.serialized) struct KafkaOffsetsTests {
    static let topic = InputTopic.privacyRequests.name(prefix: "cloudwaste.")

    /// 23 records over five partitions, and a consumer of the same cluster.
    static func published() async throws -> (TestEnvironment, KafkaConsumer, [TopicPartition]) {
        let env = try await TestEnvironment(partitions: [.privacyRequests: 5])
        try env.publish((0..<23).map { PrivacyTests.privacy("user-\($0)", "opt_out", at: "2026-03-01T00:00:00Z", event: "w\($0)") })
        let consumer = try KafkaConsumer(config: KafkaConfig(["bootstrap.servers": env.kafka.bootstrapServers, "group.id": "offsets-\(UUID().uuidString)"]),
                                         logger: testLogger("test.offsets"))
        let partitions = try consumer.partitions(of: topic).map { TopicPartition(topic: topic, partition: $0) }.sorted()
        #expect(partitions.count == 5)
        return (env, consumer, partitions)
    }

    /// Each must be what the partition's own query answers, and a partition without an answer
    /// must fail the call, never pass for caught up.
    @Test func watermarksAskedForTogetherAreEachPartitionsOwn() async throws {
        let (env, consumer, partitions) = try await Self.published()
        defer { consumer.close(timeoutMs: 1000); withExtendedLifetime(env) {} }
        let together = try consumer.queryWatermarks(partitions)
        var records: Int64 = 0
        for tp in partitions {
            let own = try consumer.queryWatermarks(tp)
            #expect(together[tp]?.low == own.low && together[tp]?.high == own.high, "\(tp)")
            records += own.high - own.low
        }
        #expect(records == 23)
        #expect(throws: KafkaError.self) {
            try consumer.queryWatermarks(partitions + [TopicPartition(topic: Self.topic, partition: 9)], timeoutMs: 2000)
        }
    }

    @Test func logicalOffsetsAreResolvedToTheWatermarksAndConcreteOnesKept() async throws {
        let (env, consumer, partitions) = try await Self.published()
        defer { consumer.close(timeoutMs: 1000); withExtendedLifetime(env) {} }
        let (p0, p1, p2) = (partitions[0], partitions[1], partitions[2])
        let resolved = consumer.resolvingLogicalOffsets([p0: KafkaOffset.beginning, p1: KafkaOffset.end, p2: 7])
        #expect(resolved[p0] == (try consumer.queryWatermarks(p0)).low)
        #expect(resolved[p1] == (try consumer.queryWatermarks(p1)).high)
        #expect(resolved[p2] == 7)
        // Without an answer for one of them, librdkafka is left to look them up as before.
        let unknown = TopicPartition(topic: Self.topic, partition: 9)
        #expect(consumer.resolvingLogicalOffsets([p0: KafkaOffset.beginning, unknown: KafkaOffset.beginning])
                == [p0: KafkaOffset.beginning, unknown: KafkaOffset.beginning])
    }

    /// Assigned at its end, paused, sought to its beginning and resumed, in the order the
    /// consumer loop does it: the seek hands librdkafka the beginning's offset, not the logical
    /// one (whose lookup the resume would outdate), and the partition is read from its first record.
    @Test func aPausedPartitionSoughtToItsBeginningIsReadFromItsFirstRecord() async throws {
        let (env, consumer, partitions) = try await Self.published()
        defer { consumer.close(timeoutMs: 1000); withExtendedLifetime(env) {} }
        var watermarks = try consumer.queryWatermarks(partitions)
        let tp = partitions.first { watermarks[$0]!.high > watermarks[$0]!.low }!
        try consumer.assign([tp: watermarks[tp]!.high])  // concrete: no lookup of librdkafka's in flight
        consumer.pause([tp])
        #expect(try consumer.seek([tp: KafkaOffset.beginning], timeoutMs: 5000) == [tp: watermarks[tp]!.low])
        consumer.resume([tp])
        var offsets: [Int64] = []
        let deadline = Date(timeIntervalSinceNow: 30)
        while offsets.count < Int(watermarks[tp]!.high - watermarks[tp]!.low) && Date() < deadline {
            offsets += try consumer.poll(maxMessages: 100, timeoutMs: 200).filter { $0.topicPartition == tp }.map(\.offset)
        }
        watermarks = try consumer.queryWatermarks([tp])
        #expect(offsets == Array(watermarks[tp]!.low..<watermarks[tp]!.high))
    }
}
