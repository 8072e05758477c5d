import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// Several writers, each with its own connection and a disjoint set of partitions: the same rows
/// as one writer, fencing that hits one writer only, dead letters published once, and a stop that
/// is bounded even while PostgreSQL is down.
@Suite(.serialized) struct WriterTests {

    @Test func severalWritersWithInterleavedPartitionsGiveTheRowsOfOne() async throws {
        let messages = TrafficGenerator(seed: 41, badRecordShare: 0.02).messages(count: 12_000)
        let env = try await TestEnvironment(partitions: [.scanResources: 8, .userActions: 5, .resourceLifecycle: 3, .metricSamples: 3, .privacyRequests: 2])
        try env.publish(messages)
        var one = env.config
        one.writers = 1
        one.postgresURL = try await TestPostgres.newDatabase("one")
        one.groupId = "one"
        try env.runPipeline(config: one)
        var four = env.config
        four.writers = 4
        four.batchMaxRecords = 300  // many small batches, interleaved across writers
        four.postgresURL = try await TestPostgres.newDatabase("four")
        four.groupId = "four"
        let pipeline = try env.runPipeline(config: four)
        let writers = pipeline.status.writers
        #expect(writers.count == 4)
        #expect(writers.filter { $0.batchesCommitted > 0 }.count >= 3, "\(writers.map(\.batchesCommitted))")
        let expected = try TableChecksums.compute(try env.connect(one.postgresURL))
        let actual = try TableChecksums.compute(try env.connect(four.postgresURL))
        for table in expected.keys.sorted() { #expect(actual[table] == expected[table], "table \(table)") }
        // Every partition was written by exactly one writer lane.
        let lanes = Dictionary(grouping: try env.connect(four.postgresURL).query("SELECT topic, partition FROM stream_offsets").rows) {
            ConsumerLoop.lane(of: TopicPartition(topic: $0[0]!, partition: Int32($0[1]!)!), lanes: 4)
        }
        #expect(lanes.count >= 3)
    }

    static let scanTopic = InputTopic.scanResources.name(prefix: "cloudwaste.")
    static let privacyTopic = InputTopic.privacyRequests.name(prefix: "cloudwaste.")

    /// PrivacyTests' records, on two partitions per topic (users from "c" on the second).
    static func scan(_ user: String, _ resource: String, _ at: String, _ cost: Double) -> (String, Int32, [UInt8]) {
        (scanTopic, user < "c" ? 0 : 1, PrivacyTests.scan(user, account: "123456789012", resource: resource, at: at, cost: cost, event: "e-\(resource)").2!)
    }

    static func request(_ user: String, _ kind: String, _ at: String) -> (String, Int32, [UInt8]) {
        (privacyTopic, user < "c" ? 0 : 1, PrivacyTests.privacy(user, kind, at: at, event: "p-\(user)-\(kind)").2!)
    }

    /// A fresh, migrated database and one batch of `messages` (topic, partition, value) at the
    /// offsets it claimed.
    static func batch(_ messages: [(String, Int32, [UInt8])], key: HMACKey) async throws -> (url: String, db: PostgresConnection, batch: PreparedBatch) {
        let url = try await TestPostgres.newDatabase("mixed")
        let db = try PostgresConnection(connectionString: url)
        try Migrator(schema: "public").migrate(db)
        let partitions = Set(messages.map { TopicPartition(topic: $0.0, partition: $0.1) })
        let claims = try OffsetStore(connection: db, schema: "public", groupId: StreamConfig().groupId, owner: "w").claim(Array(partitions))
        let builder = BatchBuilder(decoder: RecordDecoder(), anonymizer: Anonymizer(key: key, regions: try TestEnvironment.regions()),
                                   topicNames: [scanTopic: .scanResources, privacyTopic: .privacyRequests])
        var next: [TopicPartition: Int64] = [:]
        for (topic, partition, value) in messages {
            let tp = TopicPartition(topic: topic, partition: partition)
            let offset = next[tp, default: 0]
            next[tp] = offset + 1
            builder.add(KafkaMessage(topic: topic, partition: partition, offset: offset, key: nil, value: value),
                        generation: claims[tp]!.generation, expected: offset == 0 ? .uncommitted : .at(offset))
        }
        return (url, db, builder.seal())
    }

    /// A batch with privacy requests and other records is written as two transactions, the
    /// requests first (`PreparedBatch.transactions`): the same rows, offsets and window
    /// state as one transaction, every record judged by the requests committed just before it.
    /// Written the other way round, an opt-in could not re-admit the records it covers.
    @Test func privacyRequestsCommittedFirstGiveTheRowsOfOneTransaction() async throws {
        let key = try HMACKey(bytes: Array(0..<32))
        let messages = [
            Self.scan("alice", "vol-1", "2026-03-01T10:00:00Z", 10),
            Self.scan("bob", "vol-2", "2026-03-04T10:00:00Z", 20),
            Self.request("alice", "opt_out", "2026-03-03T00:00:00Z"),
            Self.scan("alice", "vol-3", "2026-03-06T10:00:00Z", 30),
            Self.scan("carol", "vol-4", "2026-03-05T10:00:00Z", 40),
            Self.request("carol", "erase", "2026-03-07T00:00:00Z"),
            Self.scan("carol", "vol-5", "2026-03-08T10:00:00Z", 50),
            Self.scan("alice", "vol-6", "2026-03-02T10:00:00Z", 60),
            Self.request("dave", "opt_out", "2026-03-01T00:00:00Z"),
            Self.request("dave", "opt_in", "2026-03-05T00:00:00Z"),
            Self.scan("dave", "vol-7", "2026-03-06T10:00:00Z", 70),
            Self.scan("dave", "vol-8", "2026-03-02T10:00:00Z", 80),
        ]
        var written: [[String: String]] = []
        for order in ["whole", "requests first", "requests last"] {
            let (url, db, batch) = try await Self.batch(messages, key: key)
            var config = StreamConfig()
            config.postgresURL = url
            let parts = order == "whole" ? [batch] : order == "requests first" ? batch.transactions() : batch.transactions().reversed()
            #expect(parts.count == (order == "whole" ? 1 : 2))
            let writer = BatchWriter(connection: try PostgresConnection(connectionString: url), settings: .init(config: config))
            for part in parts {
                guard case .committed = try writer.write(part) else { Issue.record("a part was not committed"); return }
            }
            var state = try TableChecksums.compute(db)
            for (name, sql) in [
                ("offsets", "SELECT string_agg(topic || partition || ':' || next_offset, ',' ORDER BY topic, partition) FROM stream_offsets"),
                ("window", "SELECT string_agg(encode(resource_hash, 'hex') || cost, ',' ORDER BY resource_hash) FROM window_resource_costs"),
                ("queued", "SELECT sum(records)::text FROM window_dirty_months"),
                ("costs", "SELECT string_agg(estimated_monthly_cost::int::text, ',' ORDER BY estimated_monthly_cost) FROM ml_training_data"),
            ] { state[name] = try db.query(PostgresQuery(unsafeSQL: sql)).string(0, 0) }
            written.append(state)
        }
        // Alice's scans before her opt-out stay, Carol's go with her erasure, and Dave's scan
        // after his opt-in stays while the one inside his opt-out does not.
        #expect(written[0]["costs"] == "10,20,60,70")
        for table in written[0].keys.sorted() { #expect(written[1][table] == written[0][table], "\(table)") }
        #expect(written[2]["costs"] == "10,20,60")
    }

    /// The writer thread commits a batch's privacy requests (with their partitions' offsets) in
    /// a transaction before the one of its other records.
    @Test func aWriterCommitsABatchsPrivacyRequestsBeforeItsOtherRecords() async throws {
        let key = try HMACKey(bytes: Array(0..<32))
        let (url, db, batch) = try await Self.batch([
            Self.scan("alice", "vol-1", "2026-03-01T10:00:00Z", 10),
            Self.request("alice", "opt_out", "2026-03-03T00:00:00Z"),
            Self.scan("bob", "vol-2", "2026-03-04T10:00:00Z", 20),
        ], key: key)
        var config = StreamConfig()
        config.postgresURL = url
        let lane = WriterLane(index: 0, capacity: 1)
        let writer = try PartitionWriter(lane: lane, config: config, state: PipelineState(gracePeriod: .seconds(30)), metrics: PipelineMetrics(),
                                         output: OutputInbox(), logger: testLogger("test.writer"))
        lane.queue.put(batch)
        lane.queue.finish()
        writer.run()
        let xids = try db.query("""
            SELECT (SELECT xmin::text::bigint FROM user_preferences),
                   (SELECT xmin::text::bigint FROM stream_offsets WHERE topic = \(Self.privacyTopic)),
                   (SELECT min(xmin::text::bigint) FROM stream_offsets WHERE topic = \(Self.scanTopic)),
                   (SELECT max(xmin::text::bigint) FROM stream_offsets WHERE topic = \(Self.scanTopic)),
                   (SELECT min(xmin::text::bigint) FROM ml_training_data)
            """).rows[0].map { Int64($0!)! }
        #expect(xids[0] == xids[1])  // the request and its offset: one transaction
        #expect(xids[2] == xids[3] && xids[3] == xids[4])  // the scans and theirs: another
        #expect(xids[1] < xids[2])  // the requests' first
        #expect(lane.status.batchesCommitted == 2)
        #expect(lane.status.recordsCommitted == 3)
    }

    @Test func aFencedWriterRereadsItsPartitionsWhileTheOthersCommit() async throws {
        let messages = TrafficGenerator(seed: 42, badRecordShare: 0.01).messages(count: 20_000)
        let env = try await TestEnvironment(partitions: LocalEnvironment.partitions(for: messages))
        try env.publish(messages)
        let expected = try await ExactlyOnceTests.cleanRun(env)
        var config = env.config
        config.writers = 2
        config.batchMaxRecords = 400
        config.postgresURL = try await TestPostgres.newDatabase("fenced")
        config.groupId = "fenced"
        let pipeline = StreamPipeline(config: config, key: env.key, regions: try TestEnvironment.regions(),
                                      options: .init(untilIdleSeconds: 3), logger: testLogger("test.fenced"))
        try pipeline.start()
        #expect(waitFor(60) { pipeline.status.recordsCommitted >= 1600 })
        // Another owner claims the partitions of writer 0 (as a rebalance elsewhere would): its
        // next batches are fenced, the consumer re-claims and re-reads them from PostgreSQL's offsets.
        let db = try env.connect(config.postgresURL)
        let owned = try db.query("SELECT topic, partition FROM stream_offsets").rows.map { TopicPartition(topic: $0[0]!, partition: Int32($0[1]!)!) }
        let lane0 = owned.filter { ConsumerLoop.lane(of: $0, lanes: 2) == 0 }
        for tp in lane0 {
            try db.query("UPDATE stream_offsets SET generation = generation + 1 WHERE topic = \(tp.topic) AND partition = \(Int(tp.partition))")
        }
        let lane1Before = pipeline.status.writers[1].batchesCommitted
        try TestEnvironment.finish(pipeline, within: 180)
        #expect(pipeline.failure == nil)
        #expect((pipeline.metrics.value("cloudwaste_fenced_batches_total") ?? 0) > 0)
        #expect(pipeline.status.writers[1].batchesCommitted > lane1Before)
        let actual = try TableChecksums.compute(db)
        for table in expected.keys.sorted() { #expect(actual[table] == expected[table], "table \(table)") }
    }

    @Test func eachDeadLetterReachesItsTopicOnceAcrossAPostgresOutage() async throws {
        let messages = TrafficGenerator(seed: 43, badRecordShare: 0.05).messages(count: 8_000)
        let env = try await TestEnvironment(partitions: LocalEnvironment.partitions(for: messages))
        try env.publish(messages)
        let (pg, database) = try await TestPostgres.ownServer("dlq", durable: true)
        defer { pg.destroy() }
        var config = env.config
        config.postgresURL = database
        config.groupId = "dlq"
        config.batchMaxRecords = 300
        config.retryMaxBackoffSeconds = 1
        let pipeline = StreamPipeline(config: config, key: env.key, regions: try TestEnvironment.regions(),
                                      options: .init(untilIdleSeconds: 3), logger: testLogger("test.dlq"))
        try pipeline.start()
        #expect(waitFor(60) { pipeline.status.recordsCommitted >= 600 })
        try pg.stop()  // every batch in flight now fails and is retried several times
        try await Task.sleep(for: .seconds(6))
        try await pg.start()
        try TestEnvironment.finish(pipeline, within: 180)
        #expect(pipeline.failure == nil)
        #expect((pipeline.metrics.value("cloudwaste_postgres_errors_total") ?? 0) > 0)
        let db = try PostgresConnection(connectionString: config.postgresURL)
        let rows = try db.query("SELECT count(*), count(published_at) FROM dead_letters")
        let (deadLetters, published) = try rows.decodeRow(0, as: (Int, Int).self)
        #expect(deadLetters > 100)
        #expect(published == deadLetters)
        let topic = try env.readTopic("cloudwaste.dead-letters.v1")
        var copies: [String: Int] = [:]
        for m in topic {
            let h = m.headers ?? [:]
            let source = [h["cw.source.topic"], h["cw.source.partition"], h["cw.source.offset"]].map { String(decoding: $0 ?? [], as: UTF8.self) }
            copies[source.joined(separator: ":"), default: 0] += 1
        }
        #expect(copies.count == deadLetters)
        #expect(copies.values.allSatisfy { $0 == 1 }, "published more than once: \(copies.filter { $0.value > 1 }.count)")
    }

    /// Issue #22: a run stopped with PostgreSQL down (or killed) between sending dead letters and
    /// marking them left rows unpublished whose letters are on the topic; the next run marks them
    /// from what it finds on the topic instead of sending them again.
    @Test func aDeadLetterSentButNeverMarkedIsMarkedNotSentAgain() async throws {
        let messages = TrafficGenerator(seed: 45, badRecordShare: 0.05).messages(count: 3_000)
        let env = try await TestEnvironment(partitions: LocalEnvironment.partitions(for: messages))
        try env.publish(messages)
        try env.runPipeline()
        let db = try env.connect()
        let total = try db.query("SELECT count(*) FROM dead_letters").decode(Int.self)
        #expect(total > 50)
        #expect(try db.query("SELECT count(*) FROM dead_letters WHERE send_from_offsets IS NOT NULL").decode(Int.self) == total)
        let unmarked = try db.query("UPDATE dead_letters SET published_at = NULL WHERE source_offset % 2 = 0 RETURNING 1").rowCount
        #expect(unmarked > 10)
        try env.runPipeline()
        #expect(try db.query("SELECT count(*) FROM dead_letters WHERE published_at IS NULL").decode(Int.self) == 0)
        var copies: [String: Int] = [:]
        for m in try env.readTopic("cloudwaste.dead-letters.v1") {
            let h = m.headers ?? [:]
            let source = [h["cw.source.topic"], h["cw.source.partition"], h["cw.source.offset"]].map { String(decoding: $0 ?? [], as: UTF8.self) }
            copies[source.joined(separator: ":"), default: 0] += 1
        }
        #expect(copies.count == total)
        #expect(copies.values.allSatisfy { $0 == 1 }, "published more than once: \(copies.filter { $0.value > 1 }.count)")
    }

    @Test func largeRecordsAreBatchedByRowsNotRecords() async throws {
        let large = TrafficGenerator(seed: 44).largeMetricSamples(count: 12, points: 5_000)
        let env = try await TestEnvironment(partitions: [.metricSamples: 6])
        try env.publish(large)
        var config = env.config
        config.batchMaxRows = 10_000
        let pipeline = try env.runPipeline(config: config)
        #expect(try TableChecksums.count(try env.connect(), "cloudwatch_metrics_history") == 12 * 5_000)
        // At most two records of 5,000 points fit a batch of 10,000 rows.
        #expect(pipeline.status.batchesCommitted >= 6)
    }
}
