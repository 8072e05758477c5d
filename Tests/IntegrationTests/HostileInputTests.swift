import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// SPEC §9 and the hostile corpus: every bad record lands in dead letters with its precise reason,
/// the daemon keeps going, and every valid record around them is stored.
@Suite(.serialized) struct HostileInputTests {
    struct Case { var topic: InputTopic; var key: [UInt8]?; var value: [UInt8]?; var reason: String? }

    /// The invalid examples of topics/ (with their documented reasons) plus hand-made hostile records.
    static func corpus() throws -> [Case] {
        var cases: [Case] = []
        let root = TestEnvironment.repositoryRoot.appendingPathComponent("topics")
        for topic in InputTopic.allCases {
            let dir = root.appendingPathComponent(topic.rawValue).appendingPathComponent("examples/invalid")
            let reasonsData = try Data(contentsOf: dir.appendingPathComponent("reasons.json"))
            guard case .object(let reasons) = try JSONParser().parse([UInt8](reasonsData)) else { continue }
            for (file, entry) in reasons.sorted(by: { $0.key < $1.key }) {
                guard case .object(let e) = entry, case .string(let reason)? = e["reason"] else { continue }
                let bytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent(file)))
                cases.append(Case(topic: topic, key: Array("k".utf8), value: bytes, reason: reason))
            }
        }
        let valid = "{\"event_id\":\"E\",\"scan_id\":\"S\",\"detected_at\":\"2026-05-01T10:00:00Z\",\"user_id\":\"u\",\"cloud_account_id\":\"123456789012\",\"provider\":\"aws\",\"region\":\"us-east-1\",\"resource_type\":\"ebs_volume\",\"resource_id\":\"R\",\"scenario\":\"idle\",\"confidence\":\"high\",\"estimated_monthly_cost\":COST}"
        func scan(_ replace: [String: String]) -> [UInt8] {
            var s = valid
            for (k, v) in replace { s = s.replacingOccurrences(of: k, with: v) }
            return Array(s.utf8)
        }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        cases += [
            Case(topic: .scanResources, key: Array("k".utf8), value: nil, reason: "empty_payload"),  // tombstone
            Case(topic: .scanResources, key: nil, value: [], reason: "empty_payload"),
            Case(topic: .scanResources, key: nil, value: Array("{\"a\":\(deep)}".utf8), reason: "nesting_too_deep"),
            Case(topic: .scanResources, key: nil, value: Array(deep.utf8), reason: "nesting_too_deep"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "\"12.5\""]), reason: "wrong_type: estimated_monthly_cost"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "NaN"]), reason: "malformed_json"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "Infinity"]), reason: "malformed_json"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "1e400"]), reason: "invalid_number: estimated_monthly_cost"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "-0.01"]), reason: "invalid_money: estimated_monthly_cost"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "1", "2026-05-01T10:00:00Z": "0000-00-00T00:00:00Z"]), reason: "invalid_timestamp: detected_at"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "1", "2026-05-01T10:00:00Z": "9999-12-31T23:59:59Z"]), reason: "future_timestamp: detected_at"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "1", "2026-05-01T10:00:00Z": "2026-05-01T10:00:00"]), reason: "invalid_timestamp: detected_at"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "1", "\"aws\"": "\"oracle\""]), reason: "unknown_provider: provider"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "1", "ebs_volume": "ebs volume'; DROP TABLE ml_training_data;--"]), reason: "invalid_value: resource_type"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "1", "\"high\"": "\"extreme\""]), reason: "invalid_value: confidence"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "1", "\"u\"": "7"]), reason: "wrong_type: user_id"),
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "1", "\"event_id\":\"E\"": "\"event_id\":\"E\",\"event_id\":\"F\""]), reason: "duplicate_field: event_id"),
            Case(topic: .scanResources, key: Array("k".utf8), value: Array("{\"event_id\":\"\u{07}".utf8), reason: "malformed_json"),
            Case(topic: .scanResources, key: Array("k".utf8), value: [0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x31, 0x7D], reason: "invalid_utf8"),
            Case(topic: .userActions, key: Array("k".utf8), value: Array("{\"event_id\":\"e\",\"user_id\":\"u\",\"cloud_account_id\":\"a\",\"provider\":\"gcp\",\"resource_id\":\"r\",\"resource_type\":\"disk\",\"action\":\"archived\",\"detected_at\":\"2026-05-01T10:00:00Z\",\"action_at\":\"2026-05-02T10:00:00Z\"}".utf8), reason: "invalid_value: action"),
            Case(topic: .metricSamples, key: Array("k".utf8), value: Array("{\"cloud_account_id\":\"a\",\"provider\":\"gcp\",\"resource_id\":\"r\",\"metric\":\"cpu\",\"points\":[{\"ts\":\"2026-05-01T10:00:00Z\",\"value\":1e16}]}".utf8), reason: "invalid_value: points"),
            Case(topic: .privacyRequests, key: nil, value: Array("{\"event_id\":\"e\",\"user_id\":\"u\",\"request\":\"forget_me\",\"requested_at\":\"2026-05-01T10:00:00Z\"}".utf8), reason: "invalid_value: request"),
            // Valid despite looking hostile: SQL and control characters in ids are just bytes to hash.
            Case(topic: .scanResources, key: Array("k".utf8), value: scan(["COST": "3", "\"R\"": "\"r'); DROP TABLE ml_training_data;--\\u0007\\t\""]), reason: nil),
            Case(topic: .scanResources, key: nil, value: scan(["COST": "0", "\"S\"": "\"S2\""]), reason: nil),
        ]
        return cases
    }

    @Test func hostileCorpusIsDeadLetteredPreciselyAndValidRecordsSurvive() async throws {
        let env = try await TestEnvironment()
        let corpus = try Self.corpus()
        #expect(corpus.filter { $0.reason != nil }.count >= 60)
        // Everything on partition 0 in a known order, a valid record after every bad one.
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": env.kafka.bootstrapServers]), logger: testLogger("test"))
        var expectedReasons: [String: String] = [:]
        var nextOffset: [InputTopic: Int64] = [:]
        var validCount = 0
        for (i, c) in corpus.enumerated() {
            try producer.send(topic: c.topic.name(prefix: "cloudwaste."), partition: 0, key: c.key, value: c.value)
            let offset = nextOffset[c.topic, default: 0]
            nextOffset[c.topic] = offset + 1
            if let reason = c.reason { expectedReasons["\(c.topic.name(prefix: "cloudwaste.")):\(offset)"] = reason } else { validCount += 1 }
            let good = "{\"event_id\":\"ok\(i)\",\"scan_id\":\"ok\(i)\",\"detected_at\":\"2026-05-01T10:00:00Z\",\"user_id\":\"u\",\"cloud_account_id\":\"123456789012\",\"provider\":\"aws\",\"region\":\"us-east-1\",\"resource_type\":\"ebs_volume\",\"resource_id\":\"vol-\(i)\",\"scenario\":\"idle\",\"confidence\":\"high\",\"estimated_monthly_cost\":1}"
            try producer.send(topic: "cloudwaste.scan-resources.v1", partition: 0, key: Array("k".utf8), value: Array(good.utf8))
            nextOffset[.scanResources, default: 0] += 1
            validCount += 1
        }
        try producer.flush()
        let pipeline = try env.runPipeline()
        #expect(pipeline.failure == nil)
        let db = try env.connect()
        var actual: [String: String] = [:]
        for r in try db.query("SELECT source_topic, source_partition, source_offset, reason FROM dead_letters").rows {
            actual["\(r[0]!):\(r[2]!)"] = r[3]!
        }
        for (position, reason) in expectedReasons.sorted(by: { $0.key < $1.key }) {
            #expect(actual[position] == reason, "dead letter at \(position)")
        }
        #expect(actual.count == expectedReasons.count)
        // The per-reason metric counts what the table holds (each batch adds its letters per reason).
        var perCode: [String: Int] = [:]
        for r in try db.query("SELECT reason_code, count(*)::int FROM dead_letters GROUP BY 1").rows { perCode[r[0]!] = Int(r[1]!)! }
        #expect(perCode.count > 5)
        for (code, n) in perCode {
            #expect(pipeline.metrics.value("cloudwaste_dead_letters_total", labels: ["reason": code]) == Double(n), "\(code)")
        }
        #expect(try TableChecksums.count(db, "ml_training_data") == validCount)
        // Every dead letter reached the dead-letter topic with its source headers.
        let dlq = try env.readTopic("cloudwaste.dead-letters.v1")
        let positions = Set(dlq.compactMap { DeadLetterRedrive.source(of: $0) }.map { "\($0.topic):\($0.partition):\($0.offset)" })
        #expect(positions.count == expectedReasons.count)
    }

    /// A 6 MB value: rejected by size before parsing. It sits alone on its own partition, because the
    /// mock broker keeps only ~5 MiB per partition (it would evict or drop it on a busy one).
    @Test func oversizedValueIsDeadLettered() async throws {
        let env = try await TestEnvironment()
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": env.kafka.bootstrapServers]), logger: testLogger("test"))
        try producer.send(topic: "cloudwaste.scan-resources.v1", partition: 3, key: Array("big".utf8), value: [UInt8](repeating: 0x20, count: 6_000_000))
        try producer.flush()
        try env.runPipeline()
        let r = try env.connect().query("SELECT source_partition, reason, payload_bytes FROM dead_letters").rows
        #expect(r == [["3", "payload_too_large", "6000000"]])
    }

    /// A row PostgreSQL itself rejects (here: a CHECK constraint the test adds) is isolated by
    /// bisecting the batch; it becomes a dead letter and every other record of the batch is stored.
    @Test func aRowThatPostgreSQLRejectsIsBisectedOut() async throws {
        let env = try await TestEnvironment(partitions: [.scanResources: 1])
        let db = try env.connect()
        try Migrator(schema: "public").migrate(db)
        try db.query("ALTER TABLE ml_training_data ADD CONSTRAINT no_1337 CHECK (estimated_monthly_cost <> 13.37)")
        var messages: [(InputTopic, String?, [UInt8]?)] = []
        for i in 0..<200 {
            let cost = i == 137 ? "13.37" : "1"
            messages.append((.scanResources, "k", Array("{\"event_id\":\"b\(i)\",\"scan_id\":\"b\(i)\",\"detected_at\":\"2026-05-01T10:00:00Z\",\"user_id\":\"u\",\"cloud_account_id\":\"123456789012\",\"provider\":\"aws\",\"region\":\"us-east-1\",\"resource_type\":\"ebs_volume\",\"resource_id\":\"vol-\(i)\",\"scenario\":\"idle\",\"confidence\":\"high\",\"estimated_monthly_cost\":\(cost)}".utf8)))
        }
        try env.publish(messages)
        let pipeline = try env.runPipeline()
        #expect(pipeline.failure == nil)
        #expect(try TableChecksums.count(db, "ml_training_data") == 199)
        #expect(try db.query("SELECT source_offset, reason FROM dead_letters").rows == [["137", "rejected_by_database: 23514"]])
        #expect(try db.query("SELECT next_offset FROM stream_offsets WHERE topic = 'cloudwaste.scan-resources.v1'").decode(Int.self) == 200)
    }

    @Test func redriveProcessesFixedRecordsOnce() async throws {
        let env = try await TestEnvironment()
        // Records rejected by a too-strict limit; after the fix they are re-driven and stored once.
        env.config.maxPayloadBytes = 1024
        let big = "{\"event_id\":\"big\",\"scan_id\":\"big\",\"detected_at\":\"2026-05-01T10:00:00Z\",\"user_id\":\"u\",\"cloud_account_id\":\"123456789012\",\"provider\":\"aws\",\"region\":\"us-east-1\",\"resource_type\":\"ebs_volume\",\"resource_id\":\"vol-big\",\"scenario\":\"idle\",\"confidence\":\"high\",\"estimated_monthly_cost\":1,\"resource_name\":\"\(String(repeating: "x", count: 1000))\"}"
        try env.publish([(.scanResources, "k", Array(big.utf8)), (.scanResources, "k", Array(big.replacingOccurrences(of: "\"big\"", with: "\"big2\"").utf8))])
        try env.runPipeline()
        let db = try env.connect()
        #expect(try TableChecksums.count(db, "dead_letters") == 2)
        #expect(try TableChecksums.count(db, "ml_training_data") == 0)
        env.config.maxPayloadBytes = 1_048_576
        let tool = DeadLetterRedrive(db: db, config: env.config)
        let entries = try tool.list(reasonPrefix: "payload_too_large")
        #expect(entries.count == 2)
        let (count, missing) = try tool.redrive(entries)
        #expect(count == 2)
        #expect(missing.isEmpty)
        #expect(try tool.redrive(try tool.list(reasonPrefix: "payload_too_large")).redriven == 0)  // only once
        try env.runPipeline()
        #expect(try TableChecksums.count(db, "ml_training_data") == 2)
        #expect(try TableChecksums.count(db, "dead_letters") == 2)
    }
}
