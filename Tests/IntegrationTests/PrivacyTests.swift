import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// SPEC §3 and §7: consent at event time, erasure that survives replays, and no raw identifier
/// anywhere (tables, output topics, debug logs).
@Suite(.serialized) struct PrivacyTests {
    static func scan(_ user: String, account: String, resource: String, at: String, cost: Double = 10, event: String) -> (InputTopic, String?, [UInt8]?) {
        (.scanResources, account, Array("{\"event_id\":\"\(event)\",\"scan_id\":\"scan-\(event)\",\"detected_at\":\"\(at)\",\"user_id\":\"\(user)\",\"cloud_account_id\":\"\(account)\",\"provider\":\"aws\",\"region\":\"eu-west-3\",\"resource_type\":\"ebs_volume\",\"resource_id\":\"\(resource)\",\"scenario\":\"unattached\",\"confidence\":\"high\",\"estimated_monthly_cost\":\(cost)}".utf8))
    }

    static func action(_ user: String, account: String, resource: String, at: String, event: String) -> (InputTopic, String?, [UInt8]?) {
        (.userActions, account, Array("{\"event_id\":\"\(event)\",\"user_id\":\"\(user)\",\"cloud_account_id\":\"\(account)\",\"provider\":\"aws\",\"resource_id\":\"\(resource)\",\"resource_type\":\"ebs_volume\",\"action\":\"deleted\",\"detected_at\":\"2026-03-01T00:00:00Z\",\"action_at\":\"\(at)\",\"cost_saved_monthly\":10}".utf8))
    }

    static func privacy(_ user: String, _ request: String, at: String, event: String) -> (InputTopic, String?, [UInt8]?) {
        (.privacyRequests, user, Array("{\"event_id\":\"\(event)\",\"user_id\":\"\(user)\",\"request\":\"\(request)\",\"requested_at\":\"\(at)\"}".utf8))
    }

    static func bill(account: String, resource: String, day: String, amount: Double, event: String) -> (InputTopic, String?, [UInt8]?) {
        (.billedCosts, account, Array("{\"event_id\":\"\(event)\",\"cloud_account_id\":\"\(account)\",\"provider\":\"aws\",\"resource_id\":\"\(resource)\",\"usage_date\":\"\(day)\",\"amount\":\(amount),\"currency\":\"USD\"}".utf8))
    }

    @Test func optOutAppliesFromItsTimeEvenWhenItArrivesLate() async throws {
        let env = try await TestEnvironment()
        let alice = "alice@example.com"
        try env.publish([
            Self.scan(alice, account: "111111111111", resource: "vol-1", at: "2026-03-01T10:00:00Z", event: "a1"),
            Self.scan(alice, account: "111111111111", resource: "vol-2", at: "2026-03-05T10:00:00Z", event: "a2"),
            Self.scan("bob@example.com", account: "222222222222", resource: "vol-3", at: "2026-03-05T10:00:00Z", event: "b1"),
        ])
        try env.runPipeline()
        let db = try env.connect()
        #expect(try TableChecksums.count(db, "ml_training_data") == 3)
        // Alice's opt-out (effective 2026-03-03) arrives after her records were stored.
        try env.publish([Self.privacy(alice, "opt_out", at: "2026-03-03T00:00:00Z", event: "p1"),
                         Self.scan(alice, account: "111111111111", resource: "vol-4", at: "2026-03-06T10:00:00Z", event: "a3"),
                         Self.scan(alice, account: "111111111111", resource: "vol-5", at: "2026-03-02T10:00:00Z", event: "a4")])
        try env.runPipeline()
        let aliceHash = Pseudonymizer(key: env.key).pseudonym(.user, alice)
        let rows = try db.query("SELECT to_char(detected_at, 'MM-DD') FROM ml_training_data WHERE user_hash = \(aliceHash) ORDER BY 1").rows.map { $0[0]! }
        #expect(rows == ["03-01", "03-02"])  // before the opt-out: kept; after it: removed or never stored
        #expect(try db.query("SELECT consent FROM user_preferences WHERE user_hash = \(aliceHash)").string(0, 0) == "opted_out")
        let trend = try db.query("SELECT resources_detected FROM cost_trend_data WHERE account_hash = \(Pseudonymizer(key: env.key).pseudonym(.account, "111111111111"))")
        #expect(try trend.decode(Int.self) == 2)
    }

    @Test func eraseRemovesEveryRowAndAReplayNeverBringsThemBack() async throws {
        let env = try await TestEnvironment()
        let carol = "carol@example.com"
        let records = [
            Self.scan(carol, account: "333333333333", resource: "vol-c1", at: "2026-04-01T10:00:00Z", cost: 100, event: "c1"),
            Self.scan(carol, account: "333333333333", resource: "vol-c2", at: "2026-04-02T10:00:00Z", cost: 50, event: "c2"),
            Self.action(carol, account: "333333333333", resource: "vol-c1", at: "2026-04-03T10:00:00Z", event: "c3"),
            Self.scan("dave@example.com", account: "333333333333", resource: "vol-d1", at: "2026-04-02T10:00:00Z", cost: 7, event: "d1"),
            Self.bill(account: "333333333333", resource: "vol-c1", day: "2026-04-02", amount: 3.25, event: "bc1"),
            Self.bill(account: "333333333333", resource: "vol-d1", day: "2026-04-02", amount: 0.5, event: "bd1"),
        ]
        try env.publish(records)
        try env.runPipeline()
        let db = try env.connect()
        let p = Pseudonymizer(key: env.key)
        let carolHash = p.pseudonym(.user, carol)
        let account = p.pseudonym(.account, "333333333333")
        #expect(try db.query("SELECT resources_detected FROM cost_trend_data WHERE account_hash = \(account)").decode(Int.self) == 3)
        #expect(try db.query("SELECT billed_waste_monthly_cost::text FROM cost_trend_data WHERE account_hash = \(account)").string(0, 0) == "3.7500")

        try env.publish([Self.privacy(carol, "erase", at: "2026-04-10T00:00:00Z", event: "e1"),
                         Self.privacy(carol, "erase", at: "2026-04-10T00:00:00Z", event: "e1"),  // a duplicate erase is harmless
                         Self.privacy("nobody@example.com", "erase", at: "2026-04-10T00:00:00Z", event: "e2")])  // unknown user
        try env.runPipeline()
        for table in ["ml_training_data", "user_action_patterns", "window_resource_costs", "window_eliminations"] {
            #expect(try db.query("SELECT count(*) FROM \(PostgresIdentifier(table)) WHERE user_hash = \(carolHash)").decode(Int.self) == 0, "\(table)")
        }
        #expect(try db.query("SELECT count(*) FROM erasures WHERE user_hash = \(carolHash)").decode(Int.self) == 1)
        let corrected = try db.query("""
            SELECT resources_detected, waste_detected_monthly_cost::text, resources_eliminated, billed_resources,
                   billed_waste_monthly_cost::text FROM cost_trend_data WHERE account_hash = \(account)
            """).rows[0]
        // Billed days carry no user: they stay, but nothing links Carol's resources to them any more.
        #expect(corrected == ["1", "7.0000", "0", "1", "0.5000"])
        #expect(try TableChecksums.count(db, "resource_billed_costs") == 2)

        // Replay: the same records arrive again (here re-published; a replay reads them again).
        try env.publish(records)
        try env.runPipeline()
        #expect(try db.query("SELECT count(*) FROM ml_training_data WHERE user_hash = \(carolHash)").decode(Int.self) == 0)
        // A new consumer group reading everything from the beginning into the same tables: still gone.
        var replay = env.config
        replay.groupId = "replay-group"
        try env.runPipeline(config: replay)
        #expect(try db.query("SELECT count(*) FROM ml_training_data WHERE user_hash = \(carolHash)").decode(Int.self) == 0)
        #expect(try db.query("SELECT count(*) FROM user_action_patterns WHERE user_hash = \(carolHash)").decode(Int.self) == 0)
        #expect(try TableChecksums.count(db, "ml_training_data") == 1)
    }

    /// Two users report the same resource in one month (a shared account): the window state keeps
    /// each one's latest, so erasing the later reporter leaves the other's estimate and saving in
    /// the cost trend, and a late opt-out of the other then empties the month.
    @Test func aPrivacyRequestLeavesOtherUsersReportsOfTheSameResource() async throws {
        let env = try await TestEnvironment()
        let (grace, heidi, account) = ("grace@example.com", "heidi@example.com", "555555555555")
        try env.publish([
            Self.scan(grace, account: account, resource: "vol-s1", at: "2026-03-02T10:00:00Z", cost: 10, event: "g1"),
            Self.scan(heidi, account: account, resource: "vol-s1", at: "2026-03-05T10:00:00Z", cost: 30, event: "h1"),
            Self.scan(heidi, account: account, resource: "vol-h1", at: "2026-03-05T10:00:00Z", cost: 5, event: "h2"),
            Self.action(grace, account: account, resource: "vol-s1", at: "2026-03-06T10:00:00Z", event: "g2"),
            Self.action(heidi, account: account, resource: "vol-s1", at: "2026-03-07T10:00:00Z", event: "h3"),
        ])
        try env.runPipeline()
        let db = try env.connect()
        let p = Pseudonymizer(key: env.key)
        let trend = PostgresQuery(unsafeSQL: """
            SELECT resources_detected, waste_detected_monthly_cost::text, resources_eliminated FROM cost_trend_data
             WHERE account_hash = $1
            """, binds: [p.pseudonym(.account, account).postgresText])
        #expect(try db.query(trend).rows == [["2", "35.0000", "1"]])  // vol-s1 at Heidi's (later) 30, vol-h1 at 5
        #expect(try TableChecksums.count(db, "window_resource_costs") == 3)  // one row per user and resource

        try env.publish([Self.privacy(heidi, "erase", at: "2026-03-10T00:00:00Z", event: "e1")])
        try env.runPipeline()
        #expect(try db.query(trend).rows == [["1", "10.0000", "1"]])  // Grace's report of vol-s1 is left
        #expect(try db.query("SELECT count(*) FROM window_eliminations WHERE user_hash = \(p.pseudonym(.user, grace))").decode(Int.self) == 1)

        try env.publish([Self.privacy(grace, "opt_out", at: "2026-03-01T00:00:00Z", event: "o1")])
        try env.runPipeline()
        #expect(try db.query(trend).rows.isEmpty)  // nothing of the month is left
        #expect(try TableChecksums.count(db, "window_resource_costs") == 0)
        #expect(try TableChecksums.count(db, "window_eliminations") == 0)
    }

    /// Window state outlives the fact rows when ml_training_data has a shorter retention than
    /// cost_trend_data (`[retention.tables]`). Erasing one of two users of such a month then
    /// removes that user's figures only: the correction never rebuilds other users' state from
    /// fact rows that are gone.
    @Test func anErasureKeepsOtherUsersFiguresOfMonthsPastTheFactRetention() async throws {
        let db = try PostgresConnection(connectionString: try await TestPostgres.newDatabase("retained"))
        try Migrator(schema: "public").migrate(db)
        let b = TestPseudonym.bytea
        let (a, r1, r2, x, y) = (b("A"), b("r1"), b("r2"), b("X"), b("Y"))
        try db.query("""
            INSERT INTO window_resource_costs (account_hash, month, resource_hash, currency, user_hash, provider, resource_type, cost,
                detected_at, source_partition, source_offset)
            VALUES (\(a), '2024-01-01', \(r1), 'USD', \(x), 'aws', 'ebs_volume', 30, '2024-01-20T00:00:00Z', 0, 2),
                   (\(a), '2024-01-01', \(r1), 'USD', \(y), 'aws', 'ebs_volume', 10, '2024-01-10T00:00:00Z', 0, 1),
                   (\(a), '2024-01-01', \(r2), 'USD', \(y), 'aws', 'rds_instance', 4, '2024-01-10T00:00:00Z', 0, 3)
            """)
        try db.query("INSERT INTO window_dirty_months (account_hash, month, currency, records) VALUES (\(a), '2024-01-01', 'USD', 0)")
        var config = StreamConfig()
        config.postgresSchema = "public"
        let windows = CostTrendWindows(connection: db, settings: .init(config: config))
        _ = try windows.recompute(keyId: "k", wait: true)
        let trend: PostgresQuery = "SELECT resources_detected, waste_detected_monthly_cost::text FROM cost_trend_data WHERE account_hash = \(a)"
        #expect(try db.query(trend).rows == [["2", "34.0000"]])
        let (report, emissions) = try UserForgetting.forget(userHash: try #require(Pseudonym(hex: TestPseudonym.hex("X"))), keyId: "k",
                                                           config: config, connection: db)
        #expect(report.deleted["window_resource_costs"] == 1)
        #expect(emissions.map(\.key) == ["\(TestPseudonym.hex("A")):2024-01-01:USD"])
        #expect(try db.query(trend).rows == [["2", "14.0000"]])  // r1 at Y's 10, r2 at 4
        #expect(try db.query("SELECT count(*) FROM window_resource_costs WHERE user_hash = \(y)").decode(Int.self) == 2)
    }

    @Test func forgetCommandReportsWhatItDeleted() async throws {
        let env = try await TestEnvironment()
        try env.publish([Self.scan("erin@example.com", account: "444444444444", resource: "vol-e1", at: "2026-05-01T10:00:00Z", event: "x1"),
                         Self.action("erin@example.com", account: "444444444444", resource: "vol-e1", at: "2026-05-02T10:00:00Z", event: "x2")])
        try env.runPipeline()
        let db = try env.connect()
        let hash = Pseudonymizer(key: env.key).pseudonym(.user, "erin@example.com")
        let (report, emissions) = try UserForgetting.forget(userHash: hash, keyId: env.key.keyId, config: env.config, connection: db)
        #expect(report.deleted["ml_training_data"] == 1)
        #expect(report.deleted["user_action_patterns"] == 1)
        #expect(emissions.count == 1)
        let (again, _) = try UserForgetting.forget(userHash: hash, keyId: env.key.keyId, config: env.config, connection: db)  // idempotent
        #expect(again.deleted["ml_training_data"] == 0)
    }

    @Test func optInModeStoresOnlyUsersWhoOptedIn() async throws {
        let env = try await TestEnvironment()
        env.config.consentMode = .optIn
        try env.publish([Self.privacy("frank@example.com", "opt_in", at: "2026-01-01T00:00:00Z", event: "o1")])
        try env.runPipeline()
        try env.publish([Self.scan("frank@example.com", account: "555555555555", resource: "vol-f", at: "2026-05-01T10:00:00Z", event: "f1"),
                         Self.scan("gina@example.com", account: "555555555555", resource: "vol-g", at: "2026-05-01T10:00:00Z", event: "g1")])
        try env.runPipeline()
        let db = try env.connect()
        let users = try db.query("SELECT encode(user_hash, 'hex') FROM ml_training_data").rows.map { $0[0]! }
        #expect(users == [Pseudonymizer(key: env.key).pseudonym(.user, "frank@example.com").hex])
    }

    /// An opt-in published after a backlog of the user's records: the data topics wait until the
    /// privacy requests published before the assignment are applied (`PrivacyCatchUp`), so the
    /// records after the opt-in are stored whatever order librdkafka fetches the topics in, and
    /// those between the opt-out and the opt-in are not. (With `privacy_catch_up_seconds = 0`
    /// this test fails: the backlog's first batches commit before the opt-in's.)
    @Test func anOptInReadAfterItsBacklogStillReadmitsTheRecordsItCovers() async throws {
        let env = try await TestEnvironment(partitions: [.scanResources: 8, .userActions: 3, .resourceLifecycle: 2, .metricSamples: 2,
                                                   .privacyRequests: 2, .billedCosts: 2])
        env.config.batchMaxRecords = 100
        let erin = "erin@example.com"
        try env.publish([Self.privacy(erin, "opt_out", at: "2026-05-01T00:00:00Z", event: "q1")])
        try env.runPipeline()
        // Erin's records head the data partitions; other traffic follows.
        var backlog: [(InputTopic, String?, [UInt8]?)] = []
        for i in 0..<200 {
            let day = 11 + i % 15
            backlog.append(Self.scan(erin, account: String(100_000_000_000 + i), resource: "vol-e\(i)", at: "2026-05-\(day)T10:00:00Z", event: "e\(i)"))
        }
        for i in 0..<20 {
            backlog.append(Self.scan(erin, account: String(100_000_000_000 + i), resource: "vol-x\(i)", at: "2026-05-05T10:00:00Z", event: "x\(i)"))
        }
        backlog += TrafficGenerator(seed: 61, badRecordShare: 0, privacyRequests: []).messages(count: 6000).map { ($0.topic, $0.key, $0.value) }
        try env.publish(backlog + [Self.privacy(erin, "opt_in", at: "2026-05-10T00:00:00Z", event: "q2")])
        try env.runPipeline()
        let db = try env.connect()
        let erinHash = Pseudonymizer(key: env.key).pseudonym(.user, erin)
        let stored = try db.query("""
            SELECT count(*) FILTER (WHERE detected_at >= '2026-05-10'), count(*) FILTER (WHERE detected_at < '2026-05-10')
              FROM ml_training_data WHERE user_hash = \(erinHash)
            """)
        #expect(try stored.decode(Int.self) == 200)  // after the opt-in: all of them
        #expect(try stored.decode(Int.self, row: 0, column: 1) == 0)    // between the opt-out and the opt-in: none
        #expect(try db.query("SELECT consent FROM user_preferences WHERE user_hash = \(erinHash)").string(0, 0) == "collect")
    }

    /// Every string of every record holds a unique canary; none may appear in any table, any
    /// output-topic message or the daemon's debug log, nor may any 8-character piece of a raw id.
    @Test func noRawIdentifierLeaksAnywhere() async throws {
        let env = try await TestEnvironment()
        var rng = SplitMix64(seed: 99)
        func canary(_ kind: String) -> String { "\(kind)Q" + String(rng.next(), radix: 36) + String(rng.next() % 100_000, radix: 36) }
        var raw: [String] = []
        var messages: [(InputTopic, String?, [UInt8]?)] = []
        for i in 0..<30 {
            let user = "\(canary("mail")).person\(i)@corp-\(canary("dom")).example"
            let account = String(100_000_000_000 + Int(rng.next() % 800_000_000_000))
            let resource = "arn:aws:ec2:eu-west-3:\(account):volume/vol-\(canary("vol"))"
            let parent = "arn:aws:ec2:eu-west-3:\(account):instance/i-\(canary("inst"))"
            let name = "db-\(canary("name"))-primary"
            let ip = "10.\(rng.next() % 250).\(rng.next() % 250).\(rng.next() % 250)"
            let tagValue = "owner-\(canary("tag"))"
            let event = "evt-\(canary("evt"))"
            let scanId = "scan-\(canary("scan"))"
            raw += [user, account, resource, parent, name, ip, tagValue, event, scanId]
            messages.append((.scanResources, account, Array("{\"event_id\":\"\(event)\",\"scan_id\":\"\(scanId)\",\"detected_at\":\"2026-06-0\(1 + i % 9)T10:00:00Z\",\"user_id\":\"\(user)\",\"cloud_account_id\":\"\(account)\",\"provider\":\"aws\",\"region\":\"eu-west-3\",\"resource_type\":\"rds_instance\",\"resource_id\":\"\(resource)\",\"scenario\":\"idle\",\"confidence\":\"medium\",\"estimated_monthly_cost\":12.5,\"resource_name\":\"\(name)\",\"resource_created_at\":\"2025-01-01T00:00:00Z\",\"tags\":{\"Owner\":\"\(tagValue)\",\"IP\":\"\(ip)\",\"env\":\"prod\"},\"parent_resource_id\":\"\(parent)\",\"extra_field\":\"\(canary("extra"))\"}".utf8)))
            let actionEvent = "act-\(canary("act"))"
            raw.append(actionEvent)
            messages.append((.userActions, account, Array("{\"event_id\":\"\(actionEvent)\",\"user_id\":\"\(user)\",\"cloud_account_id\":\"\(account)\",\"provider\":\"aws\",\"resource_id\":\"\(resource)\",\"resource_type\":\"rds_instance\",\"action\":\"deleted\",\"detected_at\":\"2026-06-01T10:00:00Z\",\"action_at\":\"2026-06-02T10:00:00Z\",\"cost_saved_monthly\":12.5}".utf8)))
            messages.append((.resourceLifecycle, account, Array("{\"event_id\":\"\(actionEvent)-lc\",\"cloud_account_id\":\"\(account)\",\"provider\":\"aws\",\"resource_id\":\"\(resource)\",\"resource_type\":\"rds_instance\",\"to_state\":\"deleted\",\"occurred_at\":\"2026-06-02T10:00:00Z\"}".utf8)))
            messages.append((.metricSamples, account, Array("{\"cloud_account_id\":\"\(account)\",\"provider\":\"aws\",\"resource_id\":\"\(resource)\",\"metric\":\"CPUUtilization\",\"points\":[{\"ts\":\"2026-06-01T00:00:00Z\",\"value\":1.5}]}".utf8)))
            // A bad record with canaries: dead-lettered; its reason must not echo them.
            messages.append((.scanResources, account, Array("{\"event_id\":\"\(event)-bad\",\"user_id\":\"\(user)\",\"\(canary("field"))\":1, \"cloud_account_id\":\"\(account)\"}".utf8)))
        }
        messages.append((.privacyRequests, raw[0], Array("{\"event_id\":\"p-\(canary("priv"))\",\"user_id\":\"\(raw[0])\",\"request\":\"opt_in\",\"requested_at\":\"2026-01-01T00:00:00Z\"}".utf8)))
        try env.publish(messages)

        // Run the real daemon with debug logging and keep its log.
        let log = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("leak-\(UUID().uuidString).log")
        let daemon = try await ExactlyOnceTests.daemon(env, database: env.databaseURL, group: "leak", untilIdle: 3, logLevel: "debug", stderr: log)
        #expect(try await daemon.exit(within: 180) == 0)

        let db = try env.connect()
        var corpus = ""
        for table in ["ml_training_data", "user_action_patterns", "resource_lifecycle_events", "cloudwatch_metrics_history",
                      "user_preferences", "consent_events", "cost_trend_data", "window_resource_costs", "window_eliminations",
                      "dead_letters", "stream_offsets", "erasures"] {
            corpus += try db.query("SELECT string_agg(t::text, E'\\n') FROM \(PostgresIdentifier(table)) t").string(0, 0) ?? ""
        }
        #expect(try TableChecksums.count(db, "ml_training_data") == 30)
        for m in try env.readTopic("cloudwaste.cost-trends.v1") {
            corpus += String(decoding: (m.key ?? []) + (m.value ?? []), as: UTF8.self)
        }
        let logText = try String(contentsOf: log, encoding: .utf8)
        #expect(logText.contains("pipeline started"))
        var leaks: [String] = []
        for id in raw {
            let pieces = id.count <= 8 ? [id] : (0...(id.count - 8)).map { String(id.dropFirst($0).prefix(8)) }
            for piece in pieces where !Self.harmless.contains(piece) {
                if corpus.contains(piece) { leaks.append("'\(piece)' in tables/topics") }
                if logText.contains(piece) { leaks.append("'\(piece)' in the debug log") }
            }
        }
        #expect(leaks.isEmpty, "raw pieces found: \(leaks.prefix(20))")
    }

    /// 8-character pieces of the generated ids that are shared vocabulary, not identifying: the
    /// ARN's resource kind also names the stored resource_type `rds_instance`.
    static let harmless: Set<String> = ["instance"]
}
