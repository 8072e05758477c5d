import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// /healthz, /readyz, /metrics, /stats and the status page against a running pipeline.
@Suite(.serialized) struct OperatorEndpointTests {
    static func get(_ port: Int, _ path: String) throws -> (status: Int, body: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { throw TestFailure("connect failed") }
        let request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "0") ?? 0
        let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        return (status, body)
    }

    @Test func endpointsReportTheRunningPipeline() throws {
        let env = try TestEnvironment()
        try env.publish(TrafficGenerator(seed: 41, badRecordShare: 0.05).messages(count: 1500))
        let pipeline = StreamPipeline(config: env.config, key: env.key, regions: try TestEnvironment.regions(),
                                      options: .init(untilIdleSeconds: nil), logger: testLogger("test.http"))
        let endpoints = OperatorEndpoints(pipeline: pipeline, config: env.config)
        let server = try HTTPServer(host: "127.0.0.1", port: 0) { endpoints.handle($0) }
        server.start()
        defer { server.stop() }
        #expect(try Self.get(server.port, "/readyz").status == 503)  // not started yet
        try pipeline.start()
        defer { pipeline.requestStop(); pipeline.waitUntilFinished() }
        let deadline = Date(timeIntervalSinceNow: 60)
        while pipeline.status.recordsCommitted < 1500 && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        #expect(try Self.get(server.port, "/healthz") == (200, "ok\n"))
        #expect(try Self.get(server.port, "/readyz").status == 200)
        let metrics = try Self.get(server.port, "/metrics").body
        for name in ["cloudwaste_records_in_total{topic=\"cloudwaste.scan-resources.v1\"}", "cloudwaste_dead_letters_total{reason=",
                     "cloudwaste_commit_seconds_bucket", "cloudwaste_batch_records_count", "cloudwaste_partition_lag{",
                     "cloudwaste_rows_written_total{table=\"ml_training_data\"}", "cloudwaste_ready 1"] {
            #expect(metrics.contains(name), "metrics lack \(name)")
        }
        let stats = try Self.get(server.port, "/stats").body
        guard case .object(let o)? = try? JSONParser().parse(Array(stats.utf8)), case .object(let db)? = o["database"],
              case .object(let tables)? = db["tables"], case .object(let training)? = tables["ml_training_data"],
              case .number(let total)? = training["total"] else {
            Issue.record("/stats is not the expected JSON: \(stats.prefix(300))"); return
        }
        #expect(Int(total) == (try TableChecksums.count(try env.connect(), "ml_training_data")))
        let page = try Self.get(server.port, "/").body
        #expect(page.contains("<h1>CloudWaste Stream</h1>"))
        #expect(page.contains("ml_training_data"))
        #expect(try Self.get(server.port, "/nope").status == 404)
    }
}

/// The `stats` and `migrate` commands as an operator runs them.
@Suite(.serialized) struct StatsCommandTests {
    static func run(_ env: TestEnvironment, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ExactlyOnceTests.daemonPath)
        p.arguments = arguments
        p.currentDirectoryURL = TestEnvironment.repositoryRoot
        p.environment = ProcessInfo.processInfo.environment.merging([
            "CLOUDWASTE_KAFKA_BOOTSTRAP": env.kafka.bootstrapServers, "CLOUDWASTE_POSTGRES_URL": env.databaseURL,
            "CLOUDWASTE_GROUP_ID": env.config.groupId, "CLOUDWASTE_LOG_LEVEL": "error",
        ]) { _, new in new }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func statsReportsTablesDeadLettersAndLag() throws {
        let env = try TestEnvironment()
        #expect(try Self.run(env, ["migrate"]).status == 0)
        try env.publish(TrafficGenerator(seed: 51, badRecordShare: 0.05).messages(count: 1200).filter { $0.topic != .privacyRequests })
        try env.runPipeline()
        // More records arrive after the run: they show up as lag.
        let more = TrafficGenerator(seed: 52, badRecordShare: 0).messages(count: 100).filter { $0.topic == .scanResources }
        try env.publish(more)
        let (status, output) = try Self.run(env, ["stats", "--json"])
        #expect(status == 0)
        guard case .object(let o)? = try? JSONParser().parse(Array(output.utf8)), case .object(let tables)? = o["tables"],
              case .object(let training)? = tables["ml_training_data"], case .number(let total)? = training["total"],
              case .object(let dead)? = o["dead_letters"], case .object(let lag)? = o["lag"] else {
            Issue.record("stats --json is not the expected JSON: \(output.prefix(300))"); return
        }
        #expect(Int(total) == (try TableChecksums.count(try env.connect(), "ml_training_data")))
        #expect(!dead.isEmpty)
        let lagSum = lag.values.reduce(0) { if case .number(let n) = $1 { $0 + Int(n) } else { $0 } }
        #expect(lagSum == more.count)
        let text = try Self.run(env, ["stats"])
        #expect(text.output.contains("ml_training_data"))
        #expect(text.output.contains("dead letters by reason"))
    }
}
