import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// SPEC §10 as scripts see it: each bad command line, environment variable or config file gives
/// its exit code (2 bad usage or configuration, 1 runtime failure) and one line that says what is
/// wrong, never with a secret in it.
@Suite(.serialized) struct CommandLineTests {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
    }

    /// Runs the real executable with a clean CLOUDWASTE_* environment plus `environment`.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 60) async throws -> Outcome {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CLOUDWASTE_") }
        env["CLOUDWASTE_LOG_LEVEL"] = "warning"
        env.merge(environment) { _, new in new }
        // Files, not pipes: a pipe that fills up would block the child.
        let base = NSTemporaryDirectory() + "cw-cli-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: base + ".out"); try? FileManager.default.removeItem(atPath: base + ".err") }
        let started = Date()
        // In a folder without config/cloudwaste-stream.toml.
        let status = try await ChildProcess.start(ExactlyOnceTests.daemonPath, arguments, environment: env, workingDirectory: NSTemporaryDirectory(),
                                                  output: .file(base + ".out"), error: .file(base + ".err")).exit(within: timeout)
        let read = { (path: String) in String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self) }
        return Outcome(status: status, stdout: read(base + ".out"), stderr: read(base + ".err"), seconds: Date().timeIntervalSince(started))
    }

    /// A config file in the temporary folder; the caller removes it.
    static func file(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "cw-cli-\(UUID().uuidString.prefix(8)).toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let key = "9f8e3a51c27d4b60" + "0a1b2c3d4e5f60718293a4b5c6d7e8f9" + "13579bdf02468ace"

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var arguments: [String]
        var environment: [String: String] = [:]
        var status: Int32
        var message: String
        /// Text that must not appear in any output.
        var secret: String? = nil
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "unknown option", arguments: ["run", "--bogus"], status: 2, message: "Unknown option '--bogus'"),
        Case(name: "unknown command", arguments: ["bogus"], status: 2, message: "Unexpected argument 'bogus'"),
        Case(name: "--until-idle abc", arguments: ["run", "--until-idle", "abc"], status: 2, message: "is invalid for '--until-idle"),
        Case(name: "--until-idle nan", arguments: ["run", "--until-idle", "nan"], status: 2, message: "zero or more"),
        Case(name: "--until-idle -5", arguments: ["run", "--until-idle", "-5"], status: 2, message: "zero or more, not -5"),
        Case(name: "--until-idle inf", arguments: ["run", "--until-idle", "inf"], status: 2, message: "zero or more, not inf"),
        Case(name: "unknown log level", arguments: ["migrate"], environment: ["CLOUDWASTE_LOG_LEVEL": "bogus"],
             status: 2, message: "CLOUDWASTE_LOG_LEVEL must be one of trace, debug, info"),
        Case(name: "unknown librdkafka property", arguments: ["migrate"], environment: ["CLOUDWASTE_KAFKA_NO_SUCH_PROPERTY": "1"],
             status: 2, message: "unknown librdkafka property 'no.such.property'"),
        Case(name: "impossible librdkafka value", arguments: ["migrate"], environment: ["CLOUDWASTE_KAFKA_SESSION_TIMEOUT_MS": "soon"],
             status: 2, message: "session.timeout.ms"),
        Case(name: "secret librdkafka value stays hidden", arguments: ["migrate"],
             environment: ["CLOUDWASTE_KAFKA_SOCKET_TIMEOUT_MS": "-5", "CLOUDWASTE_KAFKA_SASL_PASSWORD": "K4fkaPassw0rd"],
             status: 2, message: "socket.timeout.ms", secret: "K4fkaPassw0rd"),
        Case(name: "malformed PostgreSQL URI", arguments: ["migrate"], environment: ["CLOUDWASTE_POSTGRES_URL": "postgresql://u:S3cretPw@[::1/db"],
             status: 2, message: "not a valid libpq connection string", secret: "S3cretPw"),
        Case(name: "bad PostgreSQL option value", arguments: ["migrate"],
             environment: ["CLOUDWASTE_POSTGRES_URL": "host=127.0.0.1 port=abc password=S3cretPw"],
             status: 2, message: "invalid integer value", secret: "S3cretPw"),
        Case(name: "PostgreSQL not reachable", arguments: ["migrate"],
             environment: ["CLOUDWASTE_POSTGRES_URL": "postgresql://u:S3cretPw@127.0.0.1:1/db"],
             status: 1, message: "Connection refused", secret: "S3cretPw"),
        Case(name: "illegal topic prefix", arguments: ["migrate"], environment: ["CLOUDWASTE_TOPIC_PREFIX": "a\"b; --"],
             status: 2, message: "may only hold letters, digits"),
        Case(name: "bad HTTP port", arguments: ["migrate"], environment: ["CLOUDWASTE_HTTP_PORT": "80x"],
             status: 2, message: "CLOUDWASTE_HTTP_PORT must be a whole number from 0 to 65535"),
        Case(name: "missing config file", arguments: ["migrate", "--config", "/nonexistent/cw.toml"], status: 2,
             message: "cannot read config file /nonexistent/cw.toml"),
        Case(name: "no HMAC key", arguments: ["run"], status: 2, message: "no HMAC key: set CLOUDWASTE_HMAC_KEY"),
        Case(name: "printable HMAC key", arguments: ["run"],
             environment: ["CLOUDWASTE_HMAC_KEY": "changemechangemechangemechangemechangemechange"],
             status: 2, message: "openssl rand -hex 32", secret: "changemechangemechangemechangemechangemechange"),
        Case(name: "all-zero HMAC key", arguments: ["run"], environment: ["CLOUDWASTE_HMAC_KEY": String(repeating: "0", count: 64)],
             status: 2, message: "every byte is the same"),
        Case(name: "short hex HMAC key", arguments: ["run"], environment: ["CLOUDWASTE_HMAC_KEY": String(key.prefix(56))],
             status: 2, message: "56 hex digits (28 bytes)", secret: String(key.prefix(56))),
        Case(name: "HMAC key file missing", arguments: ["run"], environment: ["CLOUDWASTE_HMAC_KEY_FILE": "/nonexistent/key"],
             status: 2, message: "cannot read the HMAC key file /nonexistent/key"),
        Case(name: "forget without a user", arguments: ["forget", "--user", "  "], environment: ["CLOUDWASTE_HMAC_KEY": key],
             status: 2, message: "--user must not be empty"),
        Case(name: "help", arguments: ["--help"], status: 0, message: "OVERVIEW"),
    ]

    @Test(arguments: cases) func badInputGivesItsExitCodeAndOneLine(_ c: Case) async throws {
        let outcome = try await Self.run(c.arguments, environment: c.environment)
        #expect(outcome.status == c.status, "\(c.name): \(outcome.stderr)")
        #expect((outcome.stderr + outcome.stdout).contains(c.message), "\(c.name): \(outcome.stderr)")
        if c.status == 2 { #expect(outcome.stderr.hasPrefix("cloudwaste-stream: "), "\(c.name): \(outcome.stderr)") }
        if let secret = c.secret {
            #expect(!outcome.stderr.contains(secret) && !outcome.stdout.contains(secret), "\(c.name) leaked its secret: \(outcome.stderr)")
        }
    }

    @Test(arguments: [
        ("[pipeline]\nbatch_max_records = 0\n", "line 2: 'pipeline.batch_max_records' must be between 1"),
        ("[pipeline]\nwriters = \"two\"\n", "line 2: 'pipeline.writers' must be a whole number"),
        ("[pipline]\nwriters = 2\n", "unknown setting 'pipline.writers'"),
        ("[kafka]\ntopic_prefix = \"a\\\"b; --\"\n", "may only hold letters"),
        ("[kafka.properties]\n\"no.such.property\" = \"1\"\n", "unknown librdkafka property 'no.such.property'"),
        ("[schedules]\nexport = \"61 * * * *\"\n", "schedule '61 * * * *'"),
    ]) func badConfigFilesAreBadConfiguration(text: String, message: String) async throws {
        let config = try Self.file(text)
        defer { try? FileManager.default.removeItem(atPath: config) }
        let outcome = try await Self.run(["migrate", "--config", config])
        #expect(outcome.status == 2, "\(outcome.stderr)")
        #expect(outcome.stderr.contains(message), "\(outcome.stderr)")
    }

    @Test func untilIdleWithoutABrokerFailsWithTheReason() async throws {
        let config = try Self.file("[pipeline]\nassignment_timeout_seconds = 4\n")
        defer { try? FileManager.default.removeItem(atPath: config) }
        let outcome = try await Self.run(["run", "--until-idle", "5", "--config", config], environment: [
            "CLOUDWASTE_KAFKA_BOOTSTRAP": "127.0.0.1:1", "CLOUDWASTE_POSTGRES_URL": try await TestPostgres.newDatabase("nobroker"),
            "CLOUDWASTE_HMAC_KEY": Self.key, "CLOUDWASTE_HTTP_PORT": "0",
        ])
        #expect(outcome.status == 1, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("no partitions were assigned within 4 s"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("127.0.0.1:1"), "the reason names the broker: \(outcome.stderr)")
        #expect(outcome.seconds < 30)
        #expect(!outcome.stdout.contains("run: records=0"))
    }

    @Test func statsWithoutKafkaSaysLagIsUnknownAndAnswersInSeconds() async throws {
        let db = try await TestPostgres.newDatabase("statskafka")
        let conn = try PostgresConnection(connectionString: db)
        try Migrator(schema: "public").migrate(conn)
        try conn.query("INSERT INTO stream_offsets (consumer_group, topic, partition, next_offset, generation) VALUES ('cloudwaste-stream', 'cloudwaste.scan-resources.v1', 0, 10, 1)")
        let outcome = try await Self.run(["stats"], environment: ["CLOUDWASTE_KAFKA_BOOTSTRAP": "127.0.0.1:1", "CLOUDWASTE_POSTGRES_URL": db])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("lag unknown: Kafka not reachable"), "\(outcome.stdout)")
        #expect(outcome.seconds < 15)
        let json = try await Self.run(["stats", "--json"], environment: ["CLOUDWASTE_KAFKA_BOOTSTRAP": "127.0.0.1:1", "CLOUDWASTE_POSTGRES_URL": db])
        #expect(json.stdout.contains("\"lag_unknown\":\"Kafka not reachable"), "\(json.stdout)")
    }
}
