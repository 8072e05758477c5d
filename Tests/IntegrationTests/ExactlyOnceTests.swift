import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// SPEC §5 with real processes: kill -9 at random moments and restart, and two instances in one
/// group with a rebalance in the middle, must both give exactly the rows of one clean run.
@Suite(.serialized) struct ExactlyOnceTests {
    static let recordCount = 30_000

    /// The daemon binary built next to the test bundle.
    static var daemonPath: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("cloudwaste-stream").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return TestEnvironment.repositoryRoot.appendingPathComponent(".build/debug/cloudwaste-stream").path
    }

    /// The environment of a daemon child process: this process's, plus the broker, the database,
    /// the group and the key, no HTTP port, and the tests' short group session; `extra` last.
    static func environment(bootstrap: String, database: String, group: String, key: HMACKey, logLevel: String = "warning",
                            extra: [String: String] = [:]) -> [String: String] {
        ProcessInfo.processInfo.environment.merging([
            "CLOUDWASTE_KAFKA_BOOTSTRAP": bootstrap,
            "CLOUDWASTE_POSTGRES_URL": database,
            "CLOUDWASTE_GROUP_ID": group,
            "CLOUDWASTE_HMAC_KEY": key.hex,
            "CLOUDWASTE_HTTP_PORT": "0",
            "CLOUDWASTE_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "CLOUDWASTE_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "CLOUDWASTE_LOG_LEVEL": logLevel,
        ].merging(extra) { _, new in new }) { _, new in new }
    }

    /// The daemon as a child process, in the repository (it reads config/cloudwaste-stream.toml);
    /// stdout is discarded, stderr goes to `stderr` when given, else to the test's own.
    static func daemon(_ env: TestEnvironment, database: String, group: String, untilIdle: Int = 4,
                       logLevel: String = "warning", stderr: URL? = nil, config: String? = nil,
                       summaryFile: URL? = nil) async throws -> ChildProcess {
        try await daemon(bootstrap: env.kafka.bootstrapServers, database: database, group: group, key: env.key, untilIdle: untilIdle,
                         logLevel: logLevel, stderr: stderr, config: config, summaryFile: summaryFile)
    }

    /// The same against any broker (the interop suite's Tansu).
    static func daemon(bootstrap: String, database: String, group: String, key: HMACKey, untilIdle: Int = 4,
                       logLevel: String = "warning", stderr: URL? = nil, config: String? = nil,
                       summaryFile: URL? = nil) async throws -> ChildProcess {
        let environment = Self.environment(bootstrap: bootstrap, database: database, group: group, key: key, logLevel: logLevel)
        return try await ChildProcess.start(daemonPath, ["run", "--until-idle", String(untilIdle)] + (config.map { ["--config", $0] } ?? [])
                                                + (summaryFile.map { ["--summary-file", $0.path] } ?? []),
                                            environment: environment, workingDirectory: TestEnvironment.repositoryRoot.path,
                                            error: stderr.map { .file($0.path) } ?? .inherited)
    }

    /// A clean single run of the same topics into its own database, for comparison.
    static func cleanRun(_ env: TestEnvironment) async throws -> [String: String] {
        var config = env.config
        config.postgresURL = try await TestPostgres.newDatabase("clean")
        config.groupId = "clean-\(UUID().uuidString.prefix(6))"
        try env.runPipeline(config: config)
        return try TableChecksums.compute(try env.connect(config.postgresURL), withSources: true)
    }

    @Test func killNineAtRandomMomentsLosesAndDuplicatesNothing() async throws {
        let messages = TrafficGenerator(seed: 3, badRecordShare: 0.02).messages(count: Self.recordCount * 2)
        // Sized so that the mock broker (≈5 MiB per partition) keeps every record.
        let env = try await TestEnvironment(partitions: LocalEnvironment.partitions(for: messages))
        try env.publish(messages)
        let expected = try await Self.cleanRun(env)
        let database = try await TestPostgres.newDatabase("chaos")
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970))
        var kills = 0
        // CI kills 4 times; the long variant (scripts/chaos.sh) sets CLOUDWASTE_CHAOS_KILLS=10.
        let rounds = Int(ProcessInfo.processInfo.environment["CLOUDWASTE_CHAOS_KILLS"] ?? "") ?? 4
        for _ in 0..<rounds {
            let p = try await Self.daemon(env, database: database, group: "chaos")
            // Let it join the group and get into the middle of a batch, then kill -9.
            try await Task.sleep(for: .seconds(4.5 + rng.nextDouble() * 3))
            if p.isRunning {
                p.signal(SIGKILL)
                kills += 1
            }
            try await p.exit(within: 180)
        }
        let summaryFile = FileManager.default.temporaryDirectory.appendingPathComponent("run-summary-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: summaryFile) }
        // Records committed so far: the sum of the stored next offsets (every partition starts at 0).
        let committed = { () throws -> Int in
            try env.connect(database).query("SELECT coalesce(sum(next_offset), 0)::bigint FROM stream_offsets WHERE next_offset > 0").decode(Int.self) ?? -1
        }
        let committedBefore = try committed()
        let final = try await Self.daemon(env, database: database, group: "chaos", summaryFile: summaryFile)
        #expect(try await final.exit(within: 180) == 0)
        #expect(kills >= 2)
        // The last run says what it did as JSON (what scripts and the benchmark read).
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: summaryFile)) as? [String: Any]
        #expect(summary?["records"] as? Int == (try committed()) - committedBefore)
        #expect((summary?["writers"] as? Int ?? 0) >= 1)
        #expect((summary?["last_commit_unix"] as? Double ?? -1) >= (summary?["first_record_unix"] as? Double ?? 0))
        #expect(summary?["stage_seconds"] is [String: Any])
        // The data partitions waited for the privacy requests before them, and the run says how long.
        let catchUp = (summary?["stage_seconds"] as? [String: Any])?["wait_for_privacy_catch_up"] as? Double
        #expect(catchUp.map { $0 > 0 && $0 < 60 } == true, "wait_for_privacy_catch_up: \(String(describing: catchUp))")
        let actual = try TableChecksums.compute(try env.connect(database), withSources: true)
        for table in expected.keys.sorted() {
            #expect(actual[table] == expected[table], "table \(table) after \(kills) kills")
        }
    }

    @Test func twoInstancesWithARebalanceGiveTheRowsOfOne() async throws {
        let messages = TrafficGenerator(seed: 5, badRecordShare: 0.02).messages(count: Self.recordCount)
        // Sized so that the mock broker (≈5 MiB per partition) keeps every record.
        let env = try await TestEnvironment(partitions: LocalEnvironment.partitions(for: messages))
        try env.publish(messages)
        let expected = try await Self.cleanRun(env)
        let database = try await TestPostgres.newDatabase("pair")
        let first = try await Self.daemon(env, database: database, group: "pair", untilIdle: 6)
        try await Task.sleep(for: .seconds(4))
        let second = try await Self.daemon(env, database: database, group: "pair", untilIdle: 6)  // forces a rebalance mid-stream
        #expect(try await first.exit(within: 180) == 0)
        #expect(try await second.exit(within: 180) == 0)
        let actual = try TableChecksums.compute(try env.connect(database), withSources: true)
        for table in expected.keys.sorted() {
            #expect(actual[table] == expected[table], "table \(table)")
        }
        // Partitions changed hands during the run (each claim bumps the generation): the rows above
        // were written by two instances across a rebalance.
        let handedOver = try env.connect(database).query("SELECT count(*) FROM stream_offsets WHERE generation >= 2").decode(Int.self)
        #expect(handedOver > 0)
    }
}
