import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
import CloudWasteSecrets
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// SPEC §10: no secret in any output. A daemon is given a database password, a SASL password and
/// an HMAC key, is driven through its error paths (PostgreSQL away, bad records), and its stderr
/// (at debug level), /stats, /metrics, /readyz and the status page are searched for them.
@Suite(.serialized) struct SecretRedactionTests {
    @Test func knownSecretsNeverReachAnyOutput() async throws {
        let env = try await TestEnvironment()
        try env.publish(TrafficGenerator(seed: 51, badRecordShare: 0.05).messages(count: 2000))
        let (pg, _) = try await TestPostgres.ownServer("secrets", durable: false)
        defer { pg.destroy() }
        let dir = pg.directory
        let dbPassword = "S3cretDbPassw0rd"
        let saslPassword = "K4fkaSaslPassw0rd"
        // Trust authentication ignores the password, so the daemon runs with it in its URL.
        let url = "postgresql://postgres:\(dbPassword)@127.0.0.1:\(pg.port)/secrets?sslmode=disable"
        let port = try ScratchPostgres.freePort()
        let stderr = dir.appendingPathComponent("daemon.err")
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CLOUDWASTE_") }.merging([
            "CLOUDWASTE_KAFKA_BOOTSTRAP": env.kafka.bootstrapServers, "CLOUDWASTE_POSTGRES_URL": url,
            "CLOUDWASTE_HMAC_KEY": env.key.hex, "CLOUDWASTE_HTTP_PORT": String(port), "CLOUDWASTE_LOG_LEVEL": "debug",
            "CLOUDWASTE_KAFKA_SASL_PASSWORD": saslPassword, "CLOUDWASTE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        ]) { _, new in new }
        let p = try await ChildProcess.start(ExactlyOnceTests.daemonPath, ["run"], environment: environment,
                                             workingDirectory: TestEnvironment.repositoryRoot.path, error: .file(stderr.path))
        defer { if p.isRunning { p.signal(SIGKILL) } }
        var pages: [String] = []
        let deadline = Date(timeIntervalSinceNow: 60)
        while Date() < deadline {
            if let stats = try? OperatorEndpointTests.get(port, "/stats"), stats.body.contains("\"records_committed\":2000") { break }
            try await Task.sleep(for: .seconds(0.5))
        }
        try pg.stop()  // errors with the connection string around them
        try await Task.sleep(for: .seconds(3))
        for path in ["/stats", "/metrics", "/readyz", "/"] { pages.append((try? OperatorEndpointTests.get(port, path).body) ?? "") }
        try await pg.start()
        try await Task.sleep(for: .seconds(2))
        for path in ["/stats", "/metrics", "/readyz", "/"] { pages.append((try? OperatorEndpointTests.get(port, path).body) ?? "") }
        p.signal(SIGTERM)
        try await p.exit(within: 60)
        let log = String(decoding: FileManager.default.contents(atPath: stderr.path) ?? Data(), as: UTF8.self)
        #expect(log.contains("debug"), "the daemon logged at debug level")
        #expect(pages.joined().contains("records_committed"))
        for secret in [dbPassword, saslPassword, env.key.hex, String(env.key.hex.prefix(24))] {
            #expect(!log.contains(secret), "stderr carries a secret")
            for page in pages { #expect(!page.contains(secret), "an HTTP page carries a secret") }
        }
    }

    @Test func secretShapesAreRedactedEvenWhenUnregistered() {
        let cases = [
            ("connection to \"postgresql://app:pw-xyz@db:5432/x\" failed", "pw-xyz"),
            ("invalid option in: host=db password=pw-abc user=app", "pw-abc"),
            ("password='p w q' host=db", "p w q"),
            ("librdkafka property sasl.password=topsecret123: bad", "topsecret123"),
            ("ssl.key.password: kp-999", "kp-999"),
        ]
        for (text, secret) in cases {
            let out = SecretRedactor.redact(text)
            #expect(!out.contains(secret), "\(out)")
            #expect(out.contains(SecretRedactor.mask))
        }
        SecretRedactor.register(connectionString: "postgresql://u:R3gistered%21@h/db")
        #expect(SecretRedactor.redact("saw R3gistered! in a message") == "saw *** in a message")
        #expect(SecretRedactor.redact("nothing secret here") == "nothing secret here")
    }
}
