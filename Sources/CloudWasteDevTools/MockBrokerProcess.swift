public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// librdkafka's mock cluster in a process of its own (`cloudwaste-stream mock-broker`), so that
/// a measurement does not share its process, and its CPU accounting, with the broker.
public final class MockBrokerProcess: Sendable {
    public let bootstrapServers: String
    public let process: ChildProcess

    /// Starts the broker with `topics` (name → partitions) and waits until it serves.
    public init(executable: String, topics: [String: Int], directory: URL, brokers: Int = 3) async throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let spec = directory.appendingPathComponent("topics.txt")
        let ready = directory.appendingPathComponent("bootstrap.txt")
        try? FileManager.default.removeItem(at: ready)
        try topics.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "\n")
            .write(to: spec, atomically: true, encoding: .utf8)
        process = try await ChildProcess.start(executable, ["mock-broker", "--brokers", String(brokers), "--topics-file", spec.path,
                                                           "--bootstrap-file", ready.path],
                                              output: .file(directory.appendingPathComponent("mock-broker.log").path))
        let deadline = Date(timeIntervalSinceNow: 30)
        while Date() < deadline {
            if let text = try? String(contentsOf: ready, encoding: .utf8), text.hasSuffix("\n") {
                bootstrapServers = text.trimmingCharacters(in: .whitespacesAndNewlines)
                return
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.signal(SIGKILL)
        _ = try? await process.exit()
        throw ChildProcess.Failure(description: "the mock broker did not start (exited, or not serving within 30 s; see \(directory.path)/mock-broker.log)")
    }

    public func shutdown() async {
        process.signal(SIGTERM)
        _ = try? await process.exit(within: 30)
    }

    /// Reads a `name partitions` line per topic.
    public static func readTopics(_ path: String) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let n = Int(parts[1]), n > 0 else {
                throw ChildProcess.Failure(description: "bad topic line '\(line)' in \(path): expected 'name partitions'")
            }
            out[String(parts[0])] = n
        }
        return out
    }
}
