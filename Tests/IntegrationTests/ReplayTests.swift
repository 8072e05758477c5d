import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// SPEC §8 replay: a rebuild from the topics gives the same rows as the original run, honours
/// erasures, keeps the live tables serving until the swap, and fences the live group onto it.
@Suite(.serialized) struct ReplayTests {
    @Test func replayRebuildsTheSameRowsAndHonoursErasures() async throws {
        let env = try await TestEnvironment()
        var messages = TrafficGenerator(seed: 31, badRecordShare: 0.02).messages(count: 3000).filter { $0.topic != .privacyRequests }
        let erased = "erased-user@example.com"
        messages.append(TrafficGenerator.Message(topic: .scanResources, key: "999999999999", value: Array("{\"event_id\":\"z1\",\"scan_id\":\"z1\",\"detected_at\":\"2026-06-02T10:00:00Z\",\"user_id\":\"\(erased)\",\"cloud_account_id\":\"999999999999\",\"provider\":\"aws\",\"region\":\"us-east-1\",\"resource_type\":\"ebs_volume\",\"resource_id\":\"vol-z\",\"scenario\":\"idle\",\"confidence\":\"high\",\"estimated_monthly_cost\":9}".utf8)))
        try env.publish(messages)
        try env.runPipeline()
        let db = try env.connect()
        let hash = Pseudonymizer(key: env.key).pseudonym(.user, erased)
        _ = try UserForgetting.forget(userHash: hash, keyId: env.key.keyId, config: env.config, connection: try env.connect())
        let before = try TableChecksums.compute(db)

        let replayer = Replayer(config: env.config, key: env.key, regions: try TestEnvironment.regions(), logger: testLogger("test.replay"))
        let report = try replayer.rebuild(from: .beginning, topics: InputTopic.allCases) { _ in }
        #expect(report.records == messages.count)
        // The live tables were not touched while rebuilding.
        #expect(try TableChecksums.compute(db) == before)
        let old = try replayer.swap()
        #expect(old.hasPrefix("public_old_"))
        let after = try TableChecksums.compute(db)
        #expect(try TableChecksums.count(db, "resource_billed_costs") > 20)
        for table in ["ml_training_data", "user_action_patterns", "resource_lifecycle_events", "cloudwatch_metrics_history",
                      "resource_billed_costs", "cost_trend_data", "erasures"] {
            #expect(after[table] == before[table], "table \(table)")
        }
        #expect(try db.query("SELECT count(*) FROM ml_training_data WHERE user_hash = \(hash)").decode(Int.self) == 0)
        // The live group now stands where the rebuild stopped, with a new generation (fencing).
        #expect(try db.query("SELECT min(generation) FROM stream_offsets WHERE consumer_group = \(env.config.groupId)").decode(Int.self) >= 2)
        // The daemon continues from there: new records only.
        try env.publish([TrafficGenerator.Message(topic: .scanResources, key: "888888888888", value: Array("{\"event_id\":\"n1\",\"scan_id\":\"n1\",\"detected_at\":\"2026-06-03T10:00:00Z\",\"user_id\":\"u\",\"cloud_account_id\":\"888888888888\",\"provider\":\"aws\",\"region\":\"us-east-1\",\"resource_type\":\"ebs_volume\",\"resource_id\":\"vol-n\",\"scenario\":\"idle\",\"confidence\":\"high\",\"estimated_monthly_cost\":9}".utf8))])
        let pipeline = try env.runPipeline()
        #expect(pipeline.status.recordsCommitted == 1)
    }

    /// Re-reading one topic keeps what the others built: the window state of the topics not re-read
    /// is copied, and every month is recomputed from it, not only the months the topic touches.
    @Test func replayOfBilledCostsAloneKeepsEveryCostTrend() async throws {
        let env = try await TestEnvironment()
        var messages = TrafficGenerator(seed: 34, badRecordShare: 0).messages(count: 2000).filter { $0.topic != .privacyRequests }
        // A month that no billed record touches.
        messages.append(TrafficGenerator.Message(topic: .scanResources, key: "777777777777", value: Array("{\"event_id\":\"q1\",\"scan_id\":\"q1\",\"detected_at\":\"2025-01-02T10:00:00Z\",\"user_id\":\"u\",\"cloud_account_id\":\"777777777777\",\"provider\":\"aws\",\"region\":\"us-east-1\",\"resource_type\":\"ebs_volume\",\"resource_id\":\"vol-q\",\"scenario\":\"idle\",\"confidence\":\"high\",\"estimated_monthly_cost\":9}".utf8)))
        try env.publish(messages)
        try env.runPipeline()
        let db = try env.connect()
        let before = try TableChecksums.compute(db)
        let replayer = Replayer(config: env.config, key: env.key, regions: try TestEnvironment.regions(), logger: testLogger("test.replay"))
        let report = try replayer.rebuild(from: .beginning, topics: [.billedCosts]) { _ in }
        #expect(report.records == messages.filter { $0.topic == .billedCosts }.count)
        #expect(report.records > 50)
        try replayer.swap()
        let after = try TableChecksums.compute(db)
        for table in ["ml_training_data", "user_action_patterns", "resource_billed_costs", "cost_trend_data"] {
            #expect(after[table] == before[table], "table \(table)")
        }
    }

    @Test func replayFromATimestampAfterTheLastRecordReadsNothing() async throws {
        let env = try await TestEnvironment()
        try env.publish(TrafficGenerator(seed: 33, badRecordShare: 0).messages(count: 400).filter { $0.topic != .privacyRequests })
        try env.runPipeline()
        // offsets-for-times answers -1 for every partition: each starts at its end.
        let replayer = Replayer(config: env.config, key: env.key, regions: try TestEnvironment.regions(), logger: testLogger("test.replay"))
        let future = Timestamp(micros: Timestamp.now().micros + 86_400_000_000)
        let report = try replayer.rebuild(from: .timestamp(future), topics: InputTopic.allCases) { _ in }
        #expect(report.records == 0)
        let seeded = try env.connect().query("SELECT count(*), min(next_offset) FROM \(PostgresIdentifier(replayer.shadowSchema)).stream_offsets WHERE consumer_group = \(replayer.replayGroup)")
        #expect(try seeded.decode(Int.self) > 0)
        #expect(try seeded.decode(Int.self, row: 0, column: 1) >= 0)
    }

    @Test func replayUnderANewKeyRotatesEveryPseudonym() async throws {
        let env = try await TestEnvironment()
        try env.publish(TrafficGenerator(seed: 32, badRecordShare: 0).messages(count: 800).filter { $0.topic != .privacyRequests })
        try env.runPipeline()
        let newKey = HMACKey.generate()
        let replayer = Replayer(config: env.config, key: newKey, regions: try TestEnvironment.regions(), logger: testLogger("test.replay"))
        _ = try replayer.rebuild(from: .beginning, topics: InputTopic.allCases) { _ in }
        try replayer.swap()
        let db = try env.connect()
        #expect(try db.query("SELECT array_agg(DISTINCT key_id) FROM ml_training_data").string(0, 0) == "{\(newKey.keyId)}")
        let oldAccount = Pseudonymizer(key: env.key).pseudonym(.account, "unused").hex
        #expect(oldAccount != Pseudonymizer(key: newKey).pseudonym(.account, "unused").hex)
    }
}
