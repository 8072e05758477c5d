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
        /// The port Tansu listens on (plain TCP).
        let port: Int

        /// `advertisedPort`: where clients are told to connect (a TLS proxy in front), else the
        /// broker's own port.
        init(topics: [String: Int], advertisedPort: Int? = nil) async throws {
            let tansu = ProcessInfo.processInfo.environment["CLOUDWASTE_TANSU"]!
            port = try ScratchPostgres.freePort()
            let url = "tcp://127.0.0.1:\(port)"
            bootstrap = "127.0.0.1:\(advertisedPort ?? port)"
            process = try await ChildProcess.start(tansu, ["broker", "--listener-url", url,
                                                           "--advertised-listener-url", "tcp://127.0.0.1:\(advertisedPort ?? port)",
                                                           "--storage-engine", "memory://tansu/"])
            for _ in 0..<100 where !Self.accepts(port) { try await Task.sleep(for: .milliseconds(100)) }
            for (topic, partitions) in topics {
                let status = try await ChildProcess.run(tansu, ["topic", "create", "--broker", url, "--partitions", String(partitions), topic])
                #expect(status == 0, "creating \(topic)")
            }
        }

        /// Whether something accepts TCP connections on the port.
        static func accepts(_ port: Int) -> Bool {
            guard let fd = connectToLoopback(port: port) else { return false }
            close(fd)
            return true
        }
    }

    /// The end of a daemon's log (warnings and errors), for the message of a failed expectation:
    /// the folder is removed at the end of the test.
    static func tail(of log: URL) -> Comment {
        let text = String(decoding: FileManager.default.contents(atPath: log.path) ?? Data(), as: UTF8.self)
        return Comment(rawValue: "\(log.lastPathComponent): \(text.suffix(2000))")
    }

    /// The daemon as a child process against Tansu (it inherits LD_LIBRARY_PATH: the current
    /// librdkafka).
    static func daemon(bootstrap: String, database: String, group: String, key: HMACKey, untilIdle: Int = 5,
                       stderr: URL) async throws -> ChildProcess {
        try await ExactlyOnceTests.daemon(bootstrap: bootstrap, database: database, group: group, key: key, untilIdle: untilIdle, stderr: stderr)
    }

    @Test(.enabled(if: tansuGiven, "run by scripts/interop-tansu.sh, which provides Tansu and a current librdkafka"))
    func exactlyOnceUnderKillNineAndARebalanceWithACurrentLibrdkafka() async throws {
        // This process and the daemons run the librdkafka the stage put first: a current one.
        #expect(!LibrdkafkaVersion.current.fetchersSleepOnFullQueue, "librdkafka \(LibrdkafkaVersion.current) was loaded, not a current one")
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
        #expect(try await cleanRun.exit(within: 300) == 0, Self.tail(of: logs.appendingPathComponent("clean.log")))
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
        #expect(try await last.exit(within: 300) == 0, Self.tail(of: logs.appendingPathComponent("chaos-last.log")))
        #expect(kills >= 1)
        let afterKills = try TableChecksums.compute(try PostgresConnection(connectionString: chaos), withSources: true)
        for table in expected.keys.sorted() { #expect(afterKills[table] == expected[table], "table \(table) after \(kills) kills") }

        // Two instances sharing the partitions, the second joining while the first runs: a
        // rebalance. The first stays until it has been idle for 15 s, so that on a fast machine,
        // where it reads the whole backlog within a second or two, the second still joins a group
        // whose member is alive: Tansu 0.6.0 leaves a member that joins as the other one leaves
        // without partitions for more than 30 s (the second then fails: no partitions assigned),
        // as joining 6–8 s after the first, with the first idle after 5 s, showed every time
        // (CLOUDWASTE_TANSU_PAIR_DELAY sets the join's delay, 3 s by default).
        let pair = try await TestPostgres.newDatabase("tansupair")
        let first = try await Self.daemon(bootstrap: broker.bootstrap, database: pair, group: "pair", key: key, untilIdle: 15,
                                          stderr: logs.appendingPathComponent("pair-1.log"))
        try await Task.sleep(for: .seconds(Double(ProcessInfo.processInfo.environment["CLOUDWASTE_TANSU_PAIR_DELAY"] ?? "3") ?? 3))
        let second = try await Self.daemon(bootstrap: broker.bootstrap, database: pair, group: "pair", key: key,
                                           stderr: logs.appendingPathComponent("pair-2.log"))
        #expect(try await first.exit(within: 300) == 0, Self.tail(of: logs.appendingPathComponent("pair-1.log")))
        #expect(try await second.exit(within: 300) == 0, Self.tail(of: logs.appendingPathComponent("pair-2.log")))
        let shared = try TableChecksums.compute(try PostgresConnection(connectionString: pair), withSources: true)
        for table in expected.keys.sorted() { #expect(shared[table] == expected[table], "table \(table) with two instances") }

        // A replay of every topic into the clean run's database: rebuilt, swapped in, the same rows.
        let environment = ExactlyOnceTests.environment(bootstrap: broker.bootstrap, database: clean, group: "clean", key: key)
        let replay = try await ChildProcess.start(ExactlyOnceTests.daemonPath, ["replay", "--from-beginning", "--yes"], environment: environment,
                                                  workingDirectory: TestEnvironment.repositoryRoot.path,
                                                  error: .file(logs.appendingPathComponent("replay.log").path))
        #expect(try await replay.exit(within: 300) == 0, Self.tail(of: logs.appendingPathComponent("replay.log")))
        let replayed = try TableChecksums.compute(try PostgresConnection(connectionString: clean), withSources: true)
        for table in expected.keys.sorted() { #expect(replayed[table] == expected[table], "table \(table) after a replay") }

        // No daemon warned about its librdkafka.
        for file in try FileManager.default.contentsOfDirectory(atPath: logs.path) {
            let text = String(decoding: FileManager.default.contents(atPath: logs.appendingPathComponent(file).path) ?? Data(), as: UTF8.self)
            #expect(!text.contains("is older than 2.3.0"), "\(file) ran with an old librdkafka")
        }
        try? FileManager.default.removeItem(at: logs)
    }

    /// Kafka over TLS with a real handshake: a TLS-terminating proxy (Debian's stunnel) in front
    /// of Tansu, which advertises the proxy, so every connection librdkafka makes is TLS. The
    /// daemon with `security.protocol=SSL` and the CA reads every record; with a CA that did not
    /// sign the proxy's certificate, `run --until-idle` exits 1 with a line that says so.
    @Test(.enabled(if: tansuGiven, "run by scripts/interop-tansu.sh, which provides Tansu, stunnel and a current librdkafka"))
    func kafkaOverTLSVerifiesTheBrokersCertificate() async throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("kafka-tls-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let certs = try await TestCertificates.make(in: dir.appendingPathComponent("certs"))
        let tlsPort = try ScratchPostgres.freePort()
        var topics = Dictionary(uniqueKeysWithValues: InputTopic.allCases.map { ($0.name(prefix: "cloudwaste."), 2) })
        topics["cloudwaste.cost-trends.v1"] = 1
        topics["cloudwaste.dead-letters.v1"] = 1
        let broker = try await Broker(topics: topics, advertisedPort: tlsPort)
        defer { broker.process.signal(SIGKILL) }
        let stunnelConfig = dir.appendingPathComponent("stunnel.conf")
        try """
            foreground = yes
            pid =
            [kafka]
            accept = 127.0.0.1:\(tlsPort)
            connect = 127.0.0.1:\(broker.port)
            cert = \(certs.serverCertificate)
            key = \(certs.serverKey)

            """.write(to: stunnelConfig, atomically: true, encoding: .utf8)
        let stunnel = try await ChildProcess.start(ProcessInfo.processInfo.environment["CLOUDWASTE_STUNNEL"] ?? "/usr/bin/stunnel4",
                                                   [stunnelConfig.path], error: .file(dir.appendingPathComponent("stunnel.log").path))
        defer { stunnel.signal(SIGKILL) }
        for _ in 0..<100 where !Broker.accepts(tlsPort) { try await Task.sleep(for: .milliseconds(100)) }

        let tls = ["bootstrap.servers": broker.bootstrap, "security.protocol": "SSL", "ssl.ca.location": certs.ca]
        let messages = TrafficGenerator(seed: 73, badRecordShare: 0.02).messages(count: 2000)
        let producer = try KafkaProducer(config: KafkaConfig(tls), logger: testLogger("test.tls"))
        for m in messages { try producer.send(topic: m.topic.name(prefix: "cloudwaste."), key: Array(m.key.utf8), value: m.value) }
        try producer.flush(timeoutMs: 30_000)

        let key = try HMACKey(bytes: Array(0..<32))
        let run = { (ca: String, database: String, log: String) async throws -> Int32 in
            let config = dir.appendingPathComponent("\(log).toml")
            try "[pipeline]\nassignment_timeout_seconds = 10\n".write(to: config, atomically: true, encoding: .utf8)
            let environment = ExactlyOnceTests.environment(bootstrap: broker.bootstrap, database: database, group: "tls", key: key,
                                                           extra: ["CLOUDWASTE_KAFKA_SECURITY_PROTOCOL": "SSL",
                                                                   "CLOUDWASTE_KAFKA_SSL_CA_LOCATION": ca])
            let daemon = try await ChildProcess.start(ExactlyOnceTests.daemonPath, ["run", "--until-idle", "4", "--config", config.path],
                                                      environment: environment, workingDirectory: dir.path,
                                                      error: .file(dir.appendingPathComponent("\(log).log").path))
            return try await daemon.exit(within: 180)
        }
        let database = try await TestPostgres.newDatabase("kafkatls")
        #expect(try await run(certs.ca, database, "good") == 0)
        let db = try PostgresConnection(connectionString: database)
        #expect(try db.query("SELECT sum(GREATEST(next_offset, 0)) FROM stream_offsets WHERE consumer_group = 'tls'").decode(Int.self) == messages.count)
        #expect(try TableChecksums.count(db, "ml_training_data") > 0)

        let refused = try await TestPostgres.newDatabase("kafkatlsbad")
        #expect(try await run(certs.otherCA, refused, "wrong-ca") == 1)
        let log = String(decoding: FileManager.default.contents(atPath: dir.appendingPathComponent("wrong-ca.log").path) ?? Data(), as: UTF8.self)
        #expect(log.contains("certificate verify failed"), "\(log.suffix(800))")
        #expect(log.contains("no partitions were assigned"), "\(log.suffix(800))")
    }
}
