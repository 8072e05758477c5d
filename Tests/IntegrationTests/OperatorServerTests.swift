import CloudWasteDevTools
import CloudWasteHTTP
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import TestSupport

/// The operator's HTTP surface (Hummingbird) against a running pipeline: what each endpoint says,
/// the bearer token, exports that cannot reach outside their folder, and health checks that keep
/// answering under slow clients and with PostgreSQL frozen.
@Suite(.serialized) struct OperatorServerTests {

    static func app(_ state: OperatorState, token: String? = nil) -> some ApplicationProtocol {
        Application(router: OperatorServer.router(state: state, token: token))
    }

    @Test func endpointsReportTheRunningPipeline() async throws {
        let env = try await TestEnvironment()
        try env.publish(TrafficGenerator(seed: 41, badRecordShare: 0.05).messages(count: 1500))
        let pipeline = StreamPipeline(config: env.config, key: env.key, regions: try TestEnvironment.regions(),
                                      options: .init(untilIdleSeconds: nil), logger: testLogger("test.http"))
        let state = OperatorState(pipeline: pipeline, config: env.config)
        try await Self.app(state).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }  // not started yet
        }
        try pipeline.start()
        defer { pipeline.requestStop(); pipeline.waitUntilFinished() }
        #expect(waitFor(60) { pipeline.status.recordsCommitted >= 1500 })
        // Lag is known per partition once librdkafka has a fetch response for it, which can come a
        // housekeeping tick (1 s) after the records were committed.
        #expect(waitFor(10) {
            let status = pipeline.status
            return status.assignedPartitions > 0 && status.ready && status.lag.count == status.assignedPartitions
                && status.windowRecomputes > 0
        })
        DatabaseSnapshotService(state: state, logger: testLogger("test.http")).refreshNow()
        state.sample()
        try await Self.app(state).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body) == "ok\n")
            }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { r in
                let metrics = String(buffer: r.body)
                for name in ["cloudwaste_records_in_total{topic=\"cloudwaste.scan-resources.v1\"}", "cloudwaste_dead_letters_total{reason=",
                             "cloudwaste_commit_seconds_bucket", "cloudwaste_batch_records_count", "cloudwaste_partition_lag{",
                             "cloudwaste_rows_written_total{table=\"ml_training_data\"}", "cloudwaste_ready 1", "cloudwaste_postgres_up 1",
                             "cloudwaste_window_watermark_seconds 17",
                             "# HELP cloudwaste_commit_seconds Time to write and commit one batch (seconds)",
                             "cloudwaste_build_info{librdkafka=\"\(LibrdkafkaVersion.current.text)\",version=\"\(ProductVersion.current)\"} 1"] {
                    #expect(metrics.contains(name), "metrics lack \(name)")
                }
            }
            try await client.execute(uri: "/stats", method: .get) { r in
                let stats = String(buffer: r.body)
                guard case .object(let o)? = try? JSONParser().parse(Array(stats.utf8)), case .object(let db)? = o["database"],
                      case .array(let tables)? = db["tables"], case .array(let writers)? = o["writers"],
                      case .object(let training)? = tables.first(where: { if case .object(let t) = $0 { t["table"] == .string("ml_training_data") } else { false } }),
                      case .number(let total)? = training["total"] else {
                    Issue.record("/stats is not the expected JSON: \(stats.prefix(400))"); return
                }
                #expect(Int(total) == (try? TableChecksums.count(try env.connect(), "ml_training_data")))
                #expect(writers.count == env.config.writerCount)
                #expect(o["ready"] == .bool(true))
            }
            try await client.execute(uri: "/", method: .get) { r in
                let page = String(buffer: r.body)
                #expect(r.headers[.contentType]?.hasPrefix("text/html") == true)
                for part in ["<h1>CloudWaste Stream</h1>", "id=\"writers\"", "id=\"throughput-chart\"", "id=\"cost-trends\"",
                             "ml_training_data", "cloudwaste.scan-resources.v1", "<title>"] {
                    #expect(page.contains(part), "status page lacks \(part)")
                }
            }
            try await client.execute(uri: "/nope", method: .get) { #expect($0.status == .notFound) }
        }
    }

    @Test func aBearerTokenGuardsStatsThePageAndExportsButNotTheHealthChecks() async throws {
        let env = try await TestEnvironment()
        let pipeline = StreamPipeline(config: env.config, key: env.key, regions: try TestEnvironment.regions(), logger: testLogger("test.token"))
        let state = OperatorState(pipeline: pipeline, config: env.config)
        let token = "0123456789abcdef0123"
        try await Self.app(state, token: token).test(.router) { client in
            for path in ["/stats", "/", "/exports/a/b.json"] {
                try await client.execute(uri: path, method: .get) { r in
                    #expect(r.status == .unauthorized, "\(path)")
                    #expect(r.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
                }
                try await client.execute(uri: path, method: .get, headers: [.authorization: "Bearer wrong-token-000000"]) {
                    #expect($0.status == .unauthorized, "\(path)")
                }
            }
            try await client.execute(uri: "/stats", method: .get, headers: [.authorization: "Bearer \(token)"]) { #expect($0.status == .ok) }
            for path in ["/healthz", "/metrics"] {
                try await client.execute(uri: path, method: .get) { #expect($0.status == .ok, "\(path)") }
            }
        }
    }

    @Test func exportsAreStreamedAndNothingOutsideTheirFolderIsServed() async throws {
        let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cw-exports-\(UUID().uuidString.prefix(8))")
        let folder = root.appendingPathComponent("2026-11-30T03-00-00Z")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let big = [UInt8]((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try Data(big).write(to: folder.appendingPathComponent("ml_training_data.jsonl.gz"))
        try Data("{}".utf8).write(to: folder.appendingPathComponent("manifest.json"))
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("shadow.json").path, withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("linked").path, withDestinationPath: "/etc")
        let unfinished = root.appendingPathComponent("2026-12-01T03-00-00Z")
        try FileManager.default.createDirectory(at: unfinished, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: unfinished.appendingPathComponent("ml_training_data.csv"))
        var config = StreamConfig()
        config.exportDirectory = root.path
        config.postgresURL = try await TestPostgres.newDatabase("exports")
        let pipeline = StreamPipeline(config: config, key: try HMACKey(bytes: Array(0..<32)), regions: try TestEnvironment.regions(),
                                      logger: testLogger("test.exports"))
        let state = OperatorState(pipeline: pipeline, config: config)
        try await Self.app(state).test(.router) { client in
            try await client.execute(uri: "/exports/2026-11-30T03-00-00Z/ml_training_data.jsonl.gz", method: .get) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "application/gzip")
                #expect(Array(buffer: r.body) == big)
            }
            for path in ["/exports/2026-11-30T03-00-00Z/shadow.json", "/exports/linked/passwd", "/exports/..%2F..%2Fetc/passwd",
                         "/exports/2026-11-30T03-00-00Z/..", "/exports/2026-12-01T03-00-00Z/ml_training_data.csv",
                         "/exports/2026-11-30T03-00-00Z/missing.json"] {
                try await client.execute(uri: path, method: .get) { #expect($0.status == .notFound, "\(path)") }
            }
            try await client.execute(uri: "/", method: .get) { r in
                let page = String(buffer: r.body)
                #expect(page.contains("/exports/2026-11-30T03-00-00Z/ml_training_data.jsonl.gz"))
                #expect(!page.contains("shadow.json"))
                #expect(!page.contains("2026-12-01T03-00-00Z"))
            }
        }
    }

    /// 200 clients that open a connection and dribble a request header: the server has no thread
    /// per connection, so /healthz keeps answering at once.
    @Test func healthChecksKeepAnsweringDuring200SlowClients() async throws {
        let env = try await TestEnvironment()
        let pipeline = StreamPipeline(config: env.config, key: env.key, regions: try TestEnvironment.regions(), logger: testLogger("test.slow"))
        let state = OperatorState(pipeline: pipeline, config: env.config)
        let app = Application(router: OperatorServer.router(state: state, token: nil),
                              server: .http1(configuration: .init(idleTimeout: .seconds(15))),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            var sockets: [Int32] = []
            for _ in 0..<200 {
                let fd = connectToLoopback(port: port) ?? -1
                #expect(fd >= 0)
                _ = "GET /stats HTTP/1.1\r\nHost: slow".withCString { send(fd, $0, strlen($0), 0) }
                sockets.append(fd)
            }
            defer { for fd in sockets { close(fd) } }
            var slowest = 0.0
            for round in 0..<20 {
                for fd in sockets.prefix(50) { _ = "x".withCString { send(fd, $0, 1, Int32(MSG_NOSIGNAL)) } }
                let started = Date()
                try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok, "round \(round)") }
                slowest = max(slowest, Date().timeIntervalSince(started))
            }
            #expect(slowest < 1, "slowest /healthz took \(slowest) s with 200 slow clients")
            print("slow clients: 200 open, slowest of 20 /healthz answers \(Int(slowest * 1000)) ms")
        }
    }

    /// PostgreSQL frozen (every server process stopped): /healthz, /readyz and /metrics answer from
    /// memory, /stats and the status page from the last snapshot.
    @Test func endpointsAnswerWhilePostgresIsFrozen() async throws {
        let env = try await TestEnvironment()
        try env.publish(TrafficGenerator(seed: 42, badRecordShare: 0.01).messages(count: 800))
        let (pg, database) = try await TestPostgres.ownServer("frozen", durable: false)
        defer { pg.destroy() }
        var config = env.config
        config.postgresURL = database
        let pipeline = StreamPipeline(config: config, key: env.key, regions: try TestEnvironment.regions(),
                                      options: .init(untilIdleSeconds: nil), logger: testLogger("test.frozen"))
        let state = OperatorState(pipeline: pipeline, config: config)
        try pipeline.start()
        #expect(waitFor(60) { pipeline.status.recordsCommitted >= 800 })
        DatabaseSnapshotService(state: state, logger: testLogger("test.frozen")).refreshNow()
        let postmaster = try #require(pg.postmasterPID)
        let processes = CPUSampler.processTree(postmaster)
        for pid in processes { kill(pid, SIGSTOP) }
        defer { for pid in processes { kill(pid, SIGCONT) } }
        let app = Self.app(state)
        try await app.test(.router) { client in
            let started = Date()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<64 {
                    let path = ["/healthz", "/readyz", "/metrics", "/stats"][i % 4]
                    group.addTask {
                        try await client.execute(uri: path, method: .get) { r in
                            #expect(r.status == .ok || (path == "/readyz" && r.status == .serviceUnavailable), "\(path): \(r.status)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            let seconds = Date().timeIntervalSince(started)
            #expect(seconds < 5, "64 requests took \(seconds) s with PostgreSQL frozen")
            print("frozen PostgreSQL: 64 requests to /healthz /readyz /metrics /stats answered in \(Int(seconds * 1000)) ms")
            try await client.execute(uri: "/stats", method: .get) { r in
                #expect(String(buffer: r.body).contains("\"records_committed\""))
            }
        }
        for pid in processes { kill(pid, SIGCONT) }
        pipeline.requestStop()
        pipeline.waitUntilFinished()
    }
}
