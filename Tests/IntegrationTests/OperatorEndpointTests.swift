import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// A raw HTTP/1.1 GET over a socket (for tests that watch a daemon from outside).
@Suite(.serialized) struct OperatorEndpointTests {
    static func get(_ port: Int, _ path: String) throws -> (status: Int, body: String) {
        guard let fd = connectToLoopback(port: port) else { throw TestFailure("connect failed") }
        defer { close(fd) }
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
}

/// The `stats` and `migrate` commands as an operator runs them.
@Suite(.serialized) struct StatsCommandTests {
    static func run(_ env: TestEnvironment, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let environment = ProcessInfo.processInfo.environment.merging([
            "CLOUDWASTE_KAFKA_BOOTSTRAP": env.kafka.bootstrapServers, "CLOUDWASTE_POSTGRES_URL": env.databaseURL,
            "CLOUDWASTE_GROUP_ID": env.config.groupId, "CLOUDWASTE_LOG_LEVEL": "error",
        ]) { _, new in new }
        let output = NSTemporaryDirectory() + "cw-stats-\(UUID().uuidString.prefix(8)).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let status = try await ChildProcess.start(ExactlyOnceTests.daemonPath, arguments, environment: environment,
                                                  workingDirectory: TestEnvironment.repositoryRoot.path, output: .file(output), error: .discarded)
            .exit(within: 120)
        return (status, String(decoding: FileManager.default.contents(atPath: output) ?? Data(), as: UTF8.self))
    }

    @Test func statsReportsTablesDeadLettersAndLag() async throws {
        let env = try await TestEnvironment()
        #expect(try await Self.run(env, ["migrate"]).status == 0)
        try env.publish(TrafficGenerator(seed: 51, badRecordShare: 0.05).messages(count: 1200).filter { $0.topic != .privacyRequests })
        try env.runPipeline()
        // More records arrive after the run: they show up as lag.
        let more = TrafficGenerator(seed: 52, badRecordShare: 0).messages(count: 100).filter { $0.topic == .scanResources }
        try env.publish(more)
        let (status, output) = try await Self.run(env, ["stats", "--json"])
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
        let text = try await Self.run(env, ["stats"])
        #expect(text.output.contains("ml_training_data"))
        #expect(text.output.contains("dead letters by reason"))
    }
}
