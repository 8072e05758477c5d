import CloudWasteKafka
import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// A backlog many times the consumer's local queue, read through it. With librdkafka before 2.3.0
/// a fetcher that found the queue full sleeps up to a second unless woken, so the consumer wakes
/// the fetchers while it reads a backlog (`FetcherWake`); from 2.3.0 librdkafka re-checks by
/// itself and nothing is sent. Either way every record arrives once, in order.
@Suite(.serialized) struct KafkaBacklogTests {
    @Test func aBacklogLargerThanTheQueueIsReadOnceInOrderAndWakesTheFetchersWhereNeeded() async throws {
        let env = try await TestEnvironment(partitions: [.scanResources: 4])
        let topic = InputTopic.scanResources.name(prefix: "cloudwaste.")
        let perPartitionKey = (0..<4).map { "key-\($0)" }
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: 700)
        let count = 3_000
        try env.publish((0..<count).map { (InputTopic.scanResources, perPartitionKey[$0 % 4], value) })
        // A 64 KiB queue (about 90 of these records), filled by every fetch of 64 KiB.
        let consumer = try KafkaConsumer(config: KafkaConfig(["bootstrap.servers": env.kafka.bootstrapServers,
                                                              "group.id": "backlog-\(UUID().uuidString)",
                                                              "queued.max.messages.kbytes": "64",
                                                              "message.max.bytes": "65536", "fetch.max.bytes": "65536",
                                                              "max.partition.fetch.bytes": "16384"]),
                                         logger: testLogger("test.backlog"))
        defer { consumer.close(timeoutMs: 1000); withExtendedLifetime(env) {} }
        let partitions = try consumer.partitions(of: topic).map { TopicPartition(topic: topic, partition: $0) }
        try consumer.assign(Dictionary(uniqueKeysWithValues: partitions.map { ($0, KafkaOffset.beginning) }))
        var offsets: [TopicPartition: [Int64]] = [:]
        var read = 0
        let started = Date()
        let deadline = Date(timeIntervalSinceNow: 120)
        while read < count && Date() < deadline {
            for m in try consumer.poll(maxMessages: 50, timeoutMs: 100) {
                offsets[m.topicPartition, default: []].append(m.offset)
                read += 1
            }
        }
        #expect(read == count)
        print("read \(read) records in \(String(format: "%.1f", Date().timeIntervalSince(started))) s, \(consumer.fetcherWakes) fetcher wakes")
        let watermarks = try consumer.queryWatermarks(partitions)
        for tp in partitions {
            #expect(offsets[tp, default: []] == Array(watermarks[tp]!.low..<watermarks[tp]!.high), "\(tp)")
        }
        if LibrdkafkaVersion.current.hasFixedFetchBackoff {
            #expect(consumer.fetcherWakes > 0)
        } else {
            #expect(consumer.fetcherWakes == 0)
        }
    }
}
