import CloudWasteDevTools
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// PostgreSQL over TLS as production runs it: a scratch server with a certificate of its own CA,
/// reachable by TCP only with TLS and a password, and the daemon connecting with
/// `sslmode=verify-full`. The three ways it fails (a wrong CA, a wrong password, plain TCP to a
/// TLS-only server) each give exit 1 (SPEC §10), a line that says what is wrong, and no secret.
@Suite(.serialized) struct PostgresTLSTests {
    static let password = "Tls-S3cret-pw"

    /// The server, its CA's certificate, and another CA's.
    static func server() async throws -> (pg: ScratchPostgres, ca: String, otherCA: String, directory: URL) {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cw-tls-\(UUID().uuidString.prefix(8))")
        let certs = try await TestCertificates.make(in: dir.appendingPathComponent("certs"))
        let pg = try ScratchPostgres(directory: dir.appendingPathComponent("pg"), durable: false)
        try await pg.start()
        // The key must belong to the server's user and be private.
        for (file, name) in [(certs.serverCertificate, "server.crt"), (certs.serverKey, "server.key")] {
            try FileManager.default.copyItem(at: URL(fileURLWithPath: file), to: pg.dataDirectory.appendingPathComponent(name))
        }
        if geteuid() == 0 { #expect(try await ChildProcess.run("/bin/chown", ["postgres:postgres", pg.dataDirectory.appendingPathComponent("server.key").path, pg.dataDirectory.appendingPathComponent("server.crt").path], output: .discarded) == 0) }
        // TCP for the application role: TLS and a password, nothing else.
        try """
            local all all trust
            hostssl all cloudwaste 127.0.0.1/32 scram-sha-256
            hostnossl all cloudwaste 127.0.0.1/32 reject
            host all postgres 127.0.0.1/32 trust

            """.write(to: pg.dataDirectory.appendingPathComponent("pg_hba.conf"), atomically: true, encoding: .utf8)
        let admin = try PostgresConnection(connectionString: pg.url())
        for statement: PostgresQuery in ["ALTER SYSTEM SET ssl = on", "ALTER SYSTEM SET ssl_cert_file = 'server.crt'",
                          "ALTER SYSTEM SET ssl_key_file = 'server.key'", "SELECT pg_reload_conf()",
                          "CREATE ROLE cloudwaste LOGIN PASSWORD \(literal: password)", "CREATE DATABASE tls OWNER cloudwaste"] {
            try admin.query(statement)
        }
        admin.close()
        return (pg, certs.ca, certs.otherCA, dir)
    }

    static func url(_ pg: ScratchPostgres, password: String = password, options: String) -> String {
        "postgresql://cloudwaste:\(password)@127.0.0.1:\(pg.port)/tls?\(options)"
    }

    @Test func verifyFullWorksAndEachFailureSaysWhatIsWrongWithoutTheSecret() async throws {
        let (pg, ca, otherCA, dir) = try await Self.server()
        defer { pg.destroy(); try? FileManager.default.removeItem(at: dir) }

        // The right CA: the daemon migrates over TLS (and the server sees a TLS session).
        let good = Self.url(pg, options: "sslmode=verify-full&sslrootcert=\(ca)")
        let migrated = try await CommandLineTests.run(["migrate"], environment: ["CLOUDWASTE_POSTGRES_URL": good])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        let db = try PostgresConnection(connectionString: good)
        #expect(try db.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").decode(Bool.self) == true)
        #expect(try db.query("SELECT count(*) FROM schema_migrations").decode(Int.self) == Migrator.migrations.count)
        db.close()

        let failures: [(name: String, url: String, says: String)] = [
            ("a CA that did not sign the server's certificate", Self.url(pg, options: "sslmode=verify-full&sslrootcert=\(otherCA)"),
             "certificate verify failed"),
            ("a wrong password", Self.url(pg, password: "Wr0ng-S3cret-pw", options: "sslmode=verify-full&sslrootcert=\(ca)"),
             "password authentication failed"),
            ("plain TCP to a server that takes only TLS", Self.url(pg, options: "sslmode=disable"), "no encryption"),
        ]
        for failure in failures {
            let outcome = try await CommandLineTests.run(["migrate"], environment: ["CLOUDWASTE_POSTGRES_URL": failure.url])
            #expect(outcome.status == 1, "\(failure.name): exit \(outcome.status)")
            #expect(outcome.stderr.contains(failure.says), "\(failure.name): \(outcome.stderr)")
            for secret in [Self.password, "Wr0ng-S3cret-pw"] {
                #expect(!outcome.stderr.contains(secret) && !outcome.stdout.contains(secret), "\(failure.name) printed a password")
            }
        }
    }
}
