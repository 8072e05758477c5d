import CloudWasteDevTools
import CloudWasteHTTP
import HummingbirdTesting
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// SPEC §9: infrastructure faults pause and retry; they never lose, duplicate or dead-letter data.
@Suite(.serialized) struct FaultTests {
    static let records = 20_000

    /// Generated traffic (1 % bad records) on a mock cluster sized so that it keeps every record
    /// (≈5 MiB per partition), and the rows of one clean run of it, to compare with.
    static func publishedWithACleanRun(seed: UInt64, count: Int) async throws -> (TestEnvironment, [String: String]) {
        let messages = TrafficGenerator(seed: seed, badRecordShare: 0.01).messages(count: count)
        let env = try await TestEnvironment(partitions: LocalEnvironment.partitions(for: messages))
        try env.publish(messages)
        return (env, try await ExactlyOnceTests.cleanRun(env))
    }


    @Test func postgresRestartMidStreamRecoversWithoutLossOrDuplicates() async throws {
        let (env, expected) = try await FaultTests.publishedWithACleanRun(seed: 21, count: Self.records)

        // A PostgreSQL of its own, so that stopping it does not disturb other tests.
        let (pg, database) = try await TestPostgres.ownServer("restart", durable: true)
        defer { pg.destroy() }
        var config = env.config
        config.postgresURL = database
        config.groupId = "restart"
        config.batchMaxRecords = 500
        config.retryMaxBackoffSeconds = 2
        let pipeline = StreamPipeline(config: config, key: env.key, regions: try TestEnvironment.regions(),
                                      options: .init(untilIdleSeconds: 3), logger: testLogger("test.restart"))
        try pipeline.start()
        #expect(waitFor(60) { pipeline.status.recordsCommitted >= 1500 })
        try pg.stop()                      // PostgreSQL goes away mid-stream…
        try await Task.sleep(for: .seconds(3))
        #expect(pipeline.status.postgresHealthy == false)
        // The lag operators see counts what PostgreSQL has not committed, whatever was fetched.
        #expect(waitFor(3) { pipeline.status.lag.values.reduce(0, +) >= Int64(Self.records - pipeline.status.recordsCommitted) })
        try await pg.start()                     // …and comes back; the daemon recovers by itself.
        try TestEnvironment.finish(pipeline, within: 180)
        #expect(pipeline.failure == nil)
        let actual = try TableChecksums.compute(try PostgresConnection(connectionString: config.postgresURL))
        for table in expected.keys.sorted() { #expect(actual[table] == expected[table], "table \(table)") }
        #expect((pipeline.metrics.value("cloudwaste_postgres_errors_total") ?? 0) > 0)
        #expect(try PostgresConnection(connectionString: config.postgresURL).query("SELECT count(*) FROM dead_letters WHERE reason_code = 'rejected_by_database'").decode(Int.self) == 0)
    }

    /// An error that retrying cannot cure (here a table renamed away under the daemon: 42P01)
    /// stops the pipeline with that error instead of retrying forever; once the table is back,
    /// the next run reads the uncommitted records again and ends with every row exactly once.
    @Test func anErrorThatRetryingCannotCureStopsThePipelineAndLosesNothing() async throws {
        let (env, expected) = try await FaultTests.publishedWithACleanRun(seed: 23, count: 5_000)
        var config = env.config
        config.postgresURL = try await TestPostgres.newDatabase("refused")
        config.groupId = "refused"
        config.batchMaxRecords = 200
        let pipeline = StreamPipeline(config: config, key: env.key, regions: try TestEnvironment.regions(),
                                      options: .init(untilIdleSeconds: 3), logger: testLogger("test.refused"))
        try pipeline.start()
        #expect(waitFor(60) { pipeline.status.recordsCommitted >= 400 })
        let db = try env.connect(config.postgresURL)
        try db.query("ALTER TABLE ml_training_data RENAME TO ml_training_data_away")
        #expect(pipeline.waitUntilFinished(timeout: 60), "the pipeline stops by itself")
        let failure = try #require(pipeline.failure)
        #expect(failure.contains("42P01") && failure.contains("not retriable"), "\(failure)")
        #expect(pipeline.status.recordsCommitted < 5_000)

        try db.query("ALTER TABLE ml_training_data_away RENAME TO ml_training_data")
        try env.runPipeline(config: config)
        let actual = try TableChecksums.compute(db)
        for table in expected.keys.sorted() { #expect(actual[table] == expected[table], "table \(table)") }
    }

    @Test func brokersDownAndUpAndRequestErrorsLoseNothing() async throws {
        let (env, expected) = try await FaultTests.publishedWithACleanRun(seed: 22, count: Self.records)
        var config = env.config
        config.postgresURL = try await TestPostgres.newDatabase("brokers")
        config.groupId = "brokers"
        config.batchMaxRecords = 500
        config.partitionStallSeconds = 5
        let pipeline = StreamPipeline(config: config, key: env.key, regions: try TestEnvironment.regions(),
                                      options: .init(untilIdleSeconds: 4), logger: testLogger("test.brokers"))
        let http = OperatorState(pipeline: pipeline, config: config)
        try pipeline.start()
        #expect(waitFor(60) { pipeline.status.recordsCommitted >= 1000 })
        #expect(waitFor(10) { pipeline.status.ready })
        // Down for 10 s, longer than the session timeout (6 s in tests): the group session is
        // lost, the assignment revoked and given back on rejoin, which can leave librdkafka 2.0
        // with idle partitions that only the stall watchdog's re-seek wakes up. Meanwhile the
        // operator sees it: /readyz says why, the ready and Kafka gauges drop, errors are counted.
        let downAt = Date()
        for broker in Int32(1)...3 { env.kafka.setBrokerDown(broker) }
        #expect(waitFor(5) { !pipeline.status.ready && !pipeline.status.kafkaReachable })
        try await OperatorServerTests.app(http).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { r in
                #expect(r.status == .serviceUnavailable)
                #expect(String(buffer: r.body).contains("not ready: Kafka brokers unreachable"), "\(String(buffer: r.body))")
            }
            try await client.execute(uri: "/metrics", method: .get) { r in
                let lines = String(buffer: r.body).split(separator: "\n")
                #expect(lines.contains { $0.hasPrefix("cloudwaste_ready 0") })
                #expect(lines.contains { $0.hasPrefix("cloudwaste_kafka_up 0") })
                let errors = lines.first { $0.hasPrefix("cloudwaste_kafka_client_errors_total ") }
                #expect((errors?.split(separator: " ").last).flatMap { Double($0) } ?? 0 > 0, "\(errors ?? "no Kafka client error counter")")
            }
        }
        try await Task.sleep(for: .seconds(max(0, 10 - Date().timeIntervalSince(downAt))))
        for broker in Int32(1)...3 { env.kafka.setBrokerUp(broker) }
        env.kafka.pushRequestErrors(apiKey: 1, errorCode: 6, count: 5)   // Fetch: NOT_LEADER_OR_FOLLOWER
        env.kafka.pushRequestErrors(apiKey: 8, errorCode: 15, count: 3)  // OffsetCommit: COORDINATOR_NOT_AVAILABLE
        #expect(waitFor(45) { pipeline.status.kafkaReachable })  // a broker answered (after librdkafka's reconnect back-off)
        try TestEnvironment.finish(pipeline, within: 180)
        #expect(pipeline.failure == nil)
        #expect(pipeline.status.lag.values.reduce(0, +) == 0)
        let actual = try TableChecksums.compute(try env.connect(config.postgresURL))
        for table in expected.keys.sorted() { #expect(actual[table] == expected[table], "table \(table)") }
    }

    @Test func sigtermDuringABatchCommitsCleanlyAndLeavesTheGroup() async throws {
        let (env, expected) = try await FaultTests.publishedWithACleanRun(seed: 23, count: 30_000)
        let database = try await TestPostgres.newDatabase("sigterm")
        let p = try await ExactlyOnceTests.daemon(env, database: database, group: "sigterm", untilIdle: 60)
        try await Task.sleep(for: .seconds(5.5))
        p.signal(SIGTERM)
        let started = Date()
        #expect(try await p.exit(within: 180) == 0)
        #expect(Date().timeIntervalSince(started) < 30)
        // It left the group: a new member gets every partition at once, without waiting for a
        // session timeout; and the run completes to exactly the clean rows.
        let db = try env.connect(database)
        let committedBefore = try db.query("SELECT coalesce(sum(greatest(next_offset, 0)), 0) FROM stream_offsets").decode(Int.self)
        #expect(committedBefore > 0)
        let again = try await ExactlyOnceTests.daemon(env, database: database, group: "sigterm")
        #expect(try await again.exit(within: 180) == 0)
        let actual = try TableChecksums.compute(db)
        for table in expected.keys.sorted() { #expect(actual[table] == expected[table], "table \(table)") }
    }

    /// SPEC §10: a stop is bounded even while PostgreSQL is down (the open batches are dropped:
    /// their offsets were never committed), a second signal ends the process at once, and the
    /// next run completes to exactly the clean rows.
    @Test func sigtermWhilePostgresIsDownEndsWithinTheGracePeriodAndLosesNothing() async throws {
        let (env, expected) = try await FaultTests.publishedWithACleanRun(seed: 24, count: 30_000)
        let (pg, database) = try await TestPostgres.ownServer("stop", durable: true)
        defer { pg.destroy() }
        let dir = pg.directory
        let configFile = dir.appendingPathComponent("stop.toml").path
        try "[pipeline]\nshutdown_grace_seconds = 12\nbatch_max_records = 300\nretry_max_backoff_seconds = 2\n"
            .write(toFile: configFile, atomically: true, encoding: .utf8)
        func committed() -> Int {
            (try? PostgresConnection(connectionString: database).query("SELECT coalesce(sum(greatest(next_offset, 0)), 0) FROM stream_offsets").decode(Int.self)) ?? 0
        }

        // A second signal: the process ends at once. (Data batches are in flight once well past
        // the privacy requests, which are committed first.)
        let first = try await ExactlyOnceTests.daemon(env, database: database, group: "stop", untilIdle: 60, config: configFile)
        #expect(waitFor(60) { committed() > 1000 })
        try pg.stop()
        try await Task.sleep(for: .seconds(1))
        first.signal(SIGTERM)
        try await Task.sleep(for: .seconds(1))
        let signalled = Date()
        first.signal(SIGTERM)
        let firstStatus = try await first.exit(within: 30)
        #expect(Date().timeIntervalSince(signalled) < 3)
        #expect(firstStatus == 128 + SIGTERM)

        // One signal: the stop takes at most the graceful period, and exits 0.
        try await pg.start()
        let before = committed()
        let second = try await ExactlyOnceTests.daemon(env, database: database, group: "stop", untilIdle: 60, config: configFile)
        #expect(waitFor(60) { committed() > before + 1000 })
        try pg.stop()
        try await Task.sleep(for: .seconds(1))
        let stopAt = Date()
        second.signal(SIGTERM)
        let secondStatus = try await second.exit(within: 60)
        let took = Date().timeIntervalSince(stopAt)
        #expect(took < 12 + 3, "stopped after \(took) s")
        #expect(secondStatus == 0)

        // Nothing was lost or duplicated by the dropped batches.
        try await pg.start()
        let last = try await ExactlyOnceTests.daemon(env, database: database, group: "stop", config: configFile)
        #expect(try await last.exit(within: 180) == 0)
        let actual = try TableChecksums.compute(try PostgresConnection(connectionString: database))
        for table in expected.keys.sorted() { #expect(actual[table] == expected[table], "table \(table)") }
    }
}

/// A PostgreSQL failover: a primary with an asynchronous streaming standby, the daemon given both
/// hosts with `target_session_attrs=read-write`, the primary crashed mid-run and the standby
/// promoted. Batches the primary committed but had not streamed yet are gone on the new primary,
/// and so are their offsets: they are read and written again, so the rows are still exactly once.
@Suite(.serialized) struct FailoverTests {
    @Test func aCrashedPrimaryWithItsStandbyPromotedLosesAndDuplicatesNothing() async throws {
        let (env, expected) = try await FaultTests.publishedWithACleanRun(seed: 23, count: FaultTests.records)

        let (primary, _) = try await TestPostgres.ownServer("failover", durable: true)
        defer { primary.destroy() }
        let standby = try await primary.makeStandby(directory: primary.directory.deletingLastPathComponent()
            .appendingPathComponent(primary.directory.lastPathComponent + "-standby"))
        defer { standby.destroy() }
        var config = env.config
        config.postgresURL = "postgresql://postgres@127.0.0.1:\(primary.port),127.0.0.1:\(standby.port)/failover"
            + "?sslmode=disable&target_session_attrs=read-write&connect_timeout=3"
        config.groupId = "failover"
        config.batchMaxRecords = 500
        let pipeline = StreamPipeline(config: config, key: env.key, regions: try TestEnvironment.regions(),
                                      options: .init(untilIdleSeconds: 4), logger: testLogger("test.failover"))
        try pipeline.start()
        #expect(waitFor(60) { pipeline.status.recordsCommitted >= FaultTests.records / 3 })
        try primary.stop(immediate: true)  // a crash: no shutdown checkpoint, nothing more streamed
        let crashedAt = Date()
        try await standby.promote()
        #expect(waitFor(60) { pipeline.status.postgresHealthy && pipeline.status.recordsCommitted > FaultTests.records / 3 })
        let resumedAfter = Date().timeIntervalSince(crashedAt)
        try TestEnvironment.finish(pipeline, within: 180)
        #expect(pipeline.failure == nil)
        let actual = try TableChecksums.compute(try PostgresConnection(connectionString: standby.url(database: "failover")))
        for table in expected.keys.sorted() { #expect(actual[table] == expected[table], "table \(table)") }
        print("failover: writes resumed \(String(format: "%.1f", resumedAfter)) s after the primary crashed")
    }
}
