import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// The daemon against a real, independent Kafka-compatible broker (Tansu, memory storage) with a
/// current librdkafka loaded at run time instead of Debian's 2.0.2 (which cannot read Tansu's
/// ApiVersions reply): a clean run, kill -9 at random moments, two instances through a rebalance
/// and a replay must all give the same rows (hostile records, dead letters and privacy requests
/// included in the traffic). Run by `scripts/interop-tansu.sh` (part of the test command), which fetches
/// both from PyPI and runs this suite with `CLOUDWASTE_TANSU` set and the newer librdkafka first
/// on `LD_LIBRARY_PATH`, for this process and the daemons it starts; skipped otherwise.
@Suite(.serialized) struct TansuInteropTests {
    static var tansuGiven: Bool { ProcessInfo.processInfo.environment["CLOUDWASTE_TANSU"] != nil }

    static let records = 12_000

    /// A Tansu broker on a free loopback port with the product's topics.
    final class Broker {
        let process: ChildProcess
        let bootstrap: String

        init(topics: [String: Int]) async throws {
            let tansu = ProcessInfo.processInfo.environment["CLOUDWASTE_TANSU"]!
            let port = try ScratchPostgres.freePort()
            let url = "tcp://127.0.0.1:\(port)"
            bootstrap = "127.0.0.1:\(port)"
            process = try await ChildProcess.start(tansu, ["broker", "--listener-url", url, "--advertised-listener-url", url,
                                                           "--storage-engine", "memory://tansu/"])
            for _ in 0..<100 where !Self.listening(port) { try await Task.sleep(for: .milliseconds(100)) }
            for (topic, partitions) in topics {
                let status = try await ChildProcess.run(tansu, ["topic", "create", "--broker", url, "--partitions", String(partitions), topic])
                #expect(status == 0, "creating \(topic)")
            }
        }

        static func listening(_ port: Int) -> Bool {
            (try? KafkaConsumer(config: KafkaConfig(["bootstrap.servers": "127.0.0.1:\(port)", "group.id": "probe"]), logger: testLogger("probe")))
                .map { consumer in defer { consumer.close(timeoutMs: 500) }; return (try? consumer.partitions(of: "probe", timeoutMs: 500)) != nil } ?? false
        }
    }

    /// The daemon as a child process against Tansu (it inherits LD_LIBRARY_PATH: the current
    /// librdkafka).
    static func daemon(bootstrap: String, database: String, group: String, key: HMACKey, stderr: URL) async throws -> ChildProcess {
        let environment = ProcessInfo.processInfo.environment.merging([
            "CLOUDWASTE_KAFKA_BOOTSTRAP": bootstrap, "CLOUDWASTE_POSTGRES_URL": database, "CLOUDWASTE_GROUP_ID": group,
            "CLOUDWASTE_HMAC_KEY": key.hex, "CLOUDWASTE_HTTP_PORT": "0", "CLOUDWASTE_LOG_LEVEL": "warning",
            "CLOUDWASTE_KAFKA_SESSION_TIMEOUT_MS": "6000", "CLOUDWASTE_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        ]) { _, new in new }
        return try await ChildProcess.start(ExactlyOnceTests.daemonPath, ["run", "--until-idle", "5"], environment: environment,
                                            workingDirectory: TestEnvironment.repositoryRoot.path, error: .file(stderr.path))
    }

    @Test(.enabled(if: tansuGiven, "run by scripts/interop-tansu.sh, which provides Tansu and a current librdkafka"))
    func exactlyOnceUnderKillNineAndARebalanceWithACurrentLibrdkafka() async throws {
        // This process and the daemons run the librdkafka the stage put first: a current one.
        #expect(!LibrdkafkaVersion.current.hasFixedFetchBackoff, "librdkafka \(LibrdkafkaVersion.current) was loaded, not a current one")
        let messages = TrafficGenerator(seed: 71, badRecordShare: 0.02).messages(count: Self.records)
        var topics = Dictionary(uniqueKeysWithValues: InputTopic.allCases.map { ($0.name(prefix: "cloudwaste."), 4) })
        topics["cloudwaste.cost-trends.v1"] = 2
        topics["cloudwaste.dead-letters.v1"] = 2
        let broker = try await Broker(topics: topics)
        defer { broker.process.signal(SIGKILL) }
        #expect(try LocalEnvironment.publish(messages, bootstrap: broker.bootstrap) == messages.count)
        let key = try HMACKey(bytes: Array(0..<32))
        let logs = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tansu-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)

        // One clean run: the reference rows.
        let clean = try await TestPostgres.newDatabase("tansuclean")
        let cleanRun = try await Self.daemon(bootstrap: broker.bootstrap, database: clean, group: "clean", key: key,
                                             stderr: logs.appendingPathComponent("clean.log"))
        #expect(try await cleanRun.exit(within: 300) == 0)
        let expected = try TableChecksums.compute(try PostgresConnection(connectionString: clean), withSources: true)
        #expect(try TableChecksums.count(try PostgresConnection(connectionString: clean), "ml_training_data") > Self.records / 3)

        // kill -9 at random moments, then a run to the end: the same rows.
        let chaos = try await TestPostgres.newDatabase("tansuchaos")
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970))
        var kills = 0
        for round in 0..<3 {
            let p = try await Self.daemon(bootstrap: broker.bootstrap, database: chaos, group: "chaos", key: key,
                                          stderr: logs.appendingPathComponent("chaos-\(round).log"))
            try await Task.sleep(for: .seconds(4 + rng.nextDouble() * 3))
            if p.isRunning { p.signal(SIGKILL); kills += 1 }
            _ = try await p.exit(within: 180)
        }
        let last = try await Self.daemon(bootstrap: broker.bootstrap, database: chaos, group: "chaos", key: key,
                                         stderr: logs.appendingPathComponent("chaos-last.log"))
        #expect(try await last.exit(within: 300) == 0)
        #expect(kills >= 1)
        let afterKills = try TableChecksums.compute(try PostgresConnection(connectionString: chaos), withSources: true)
        for table in expected.keys.sorted() { #expect(afterKills[table] == expected[table], "table \(table) after \(kills) kills") }

        // Two instances sharing the partitions, the second joining mid-stream: a rebalance.
        let pair = try await TestPostgres.newDatabase("tansupair")
        let first = try await Self.daemon(bootstrap: broker.bootstrap, database: pair, group: "pair", key: key,
                                          stderr: logs.appendingPathComponent("pair-1.log"))
        try await Task.sleep(for: .seconds(3))
        let second = try await Self.daemon(bootstrap: broker.bootstrap, database: pair, group: "pair", key: key,
                                           stderr: logs.appendingPathComponent("pair-2.log"))
        #expect(try await first.exit(within: 300) == 0)
        #expect(try await second.exit(within: 300) == 0)
        let shared = try TableChecksums.compute(try PostgresConnection(connectionString: pair), withSources: true)
        for table in expected.keys.sorted() { #expect(shared[table] == expected[table], "table \(table) with two instances") }

        // A replay of every topic into the clean run's database: rebuilt, swapped in, the same rows.
        let environment = ProcessInfo.processInfo.environment.merging([
            "CLOUDWASTE_KAFKA_BOOTSTRAP": broker.bootstrap, "CLOUDWASTE_POSTGRES_URL": clean, "CLOUDWASTE_GROUP_ID": "clean",
            "CLOUDWASTE_HMAC_KEY": key.hex, "CLOUDWASTE_LOG_LEVEL": "warning",
        ]) { _, new in new }
        let replay = try await ChildProcess.start(ExactlyOnceTests.daemonPath, ["replay", "--from-beginning", "--yes"], environment: environment,
                                                  workingDirectory: TestEnvironment.repositoryRoot.path,
                                                  error: .file(logs.appendingPathComponent("replay.log").path))
        #expect(try await replay.exit(within: 300) == 0)
        let replayed = try TableChecksums.compute(try PostgresConnection(connectionString: clean), withSources: true)
        for table in expected.keys.sorted() { #expect(replayed[table] == expected[table], "table \(table) after a replay") }

        // No daemon warned about its librdkafka.
        for file in try FileManager.default.contentsOfDirectory(atPath: logs.path) {
            let text = String(decoding: FileManager.default.contents(atPath: logs.appendingPathComponent(file).path) ?? Data(), as: UTF8.self)
            #expect(!text.contains("is older than 2.3.0"), "\(file) ran with an old librdkafka")
        }
        try? FileManager.default.removeItem(at: logs)
    }
}
