import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// SPEC §5: a stale instance cannot commit once another instance claimed the partition.
@Suite(.serialized) struct FencingTests {
    func batch(_ key: HMACKey, partition tp: TopicPartition, generation: Int64, start: NextOffset, offsets: ClosedRange<Int64>) throws -> PreparedBatch {
        let builder = BatchBuilder(decoder: RecordDecoder(), anonymizer: Anonymizer(key: key, regions: try TestEnvironment.regions()),
                                   topicNames: ["cloudwaste.scan-resources.v1": .scanResources])
        var expected = start
        for o in offsets {
            let json = "{\"event_id\":\"e\(o)\",\"scan_id\":\"s\(o)\",\"detected_at\":\"2026-05-01T10:00:00Z\",\"user_id\":\"u\",\"cloud_account_id\":\"123456789012\",\"provider\":\"aws\",\"region\":\"us-east-1\",\"resource_type\":\"ebs_volume\",\"resource_id\":\"vol-\(o)\",\"scenario\":\"unattached\",\"confidence\":\"high\",\"estimated_monthly_cost\":10}"
            builder.add(KafkaMessage(topic: tp.topic, partition: tp.partition, offset: o, key: nil, value: Array(json.utf8)),
                        generation: generation, expected: expected)
            expected = .at(o + 1)
        }
        return builder.seal()
    }

    @Test func zombieBatchRollsBackAndOwnerCommits() async throws {
        let url = try await TestPostgres.newDatabase()
        let key = try HMACKey(bytes: Array(0..<32))
        var config = StreamConfig()
        config.postgresURL = url
        let setup = try PostgresConnection(connectionString: url)
        try Migrator(schema: "public").migrate(setup)
        let tp = TopicPartition(topic: "cloudwaste.scan-resources.v1", partition: 0)
        let storeA = OffsetStore(connection: try PostgresConnection(connectionString: url), schema: "public", groupId: config.groupId, owner: "A")
        let storeB = OffsetStore(connection: try PostgresConnection(connectionString: url), schema: "public", groupId: config.groupId, owner: "B")
        let writerA = BatchWriter(connection: try PostgresConnection(connectionString: url), settings: .init(config: config))
        let writerB = BatchWriter(connection: try PostgresConnection(connectionString: url), settings: .init(config: config))

        let claimA = try #require(try storeA.claim([tp])[tp])
        #expect(claimA.nextOffset == .uncommitted)
        guard case .committed = try writerA.write(try batch(key, partition: tp, generation: claimA.generation, start: .uncommitted, offsets: 0...9)) else {
            Issue.record("owner's first batch must commit"); return
        }
        // A rebalance moves the partition to B, while A still holds a batch for offsets 10...19.
        let claimB = try #require(try storeB.claim([tp])[tp])
        #expect(claimB.nextOffset == .at(10))
        #expect(claimB.generation == claimA.generation + 1)
        let zombie = try writerA.write(try batch(key, partition: tp, generation: claimA.generation, start: .at(10), offsets: 10...19))
        guard case .fenced(let fenced) = zombie else { Issue.record("zombie batch must be fenced"); return }
        #expect(fenced == [tp])
        #expect(try TableChecksums.count(setup, "ml_training_data") == 10)
        // The new owner processes the same records exactly once.
        guard case .committed = try writerB.write(try batch(key, partition: tp, generation: claimB.generation, start: .at(10), offsets: 10...19)) else {
            Issue.record("new owner's batch must commit"); return
        }
        #expect(try TableChecksums.count(setup, "ml_training_data") == 20)
        // A batch that does not start where PostgreSQL stands is rejected too (no gap, no overlap).
        let overlapping = try writerB.write(try batch(key, partition: tp, generation: claimB.generation, start: .at(15), offsets: 15...25))
        guard case .fenced = overlapping else { Issue.record("overlapping batch must be rejected"); return }
        #expect(try setup.query("SELECT next_offset FROM stream_offsets").decode(Int.self) == 20)
    }
}
