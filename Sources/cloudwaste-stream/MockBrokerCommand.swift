import ArgumentParser
import CloudWasteDevTools
import Foundation
import Logging

/// `cloudwaste-stream mock-broker` (hidden): librdkafka's mock cluster with the given topics,
/// until SIGTERM/SIGINT or until its parent goes away. The benchmark runs it in a process of its
/// own so that the broker does not share the measured process's CPU.
struct MockBrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mock-broker", abstract: "Run librdkafka's mock Kafka cluster (development tool).",
                                                    shouldDisplay: false)
    @Option(help: "Brokers in the cluster.") var brokers = 3
    @Option(help: "File with one 'topic partitions' line per topic.") var topicsFile: String
    @Option(help: "Where to write the bootstrap servers once the topics exist.") var bootstrapFile: String

    func run() throws {
        let topics: [String: Int]
        do { topics = try MockBrokerProcess.readTopics(topicsFile) } catch { throw UsageFailure("\(error)") }
        var logger = Logger(label: "cloudwaste.mock-broker")
        logger.logLevel = .warning
        let cluster = try KafkaMockCluster(brokers: brokers, logger: logger)
        for (name, partitions) in topics.sorted(by: { $0.key < $1.key }) {
            try cluster.createTopic(name, partitions: partitions)
        }
        try (cluster.bootstrapServers + "\n").write(toFile: bootstrapFile, atomically: true, encoding: .utf8)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let stop = DispatchSemaphore(value: 0)
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            sources.append(source)
        }
        let parent = getppid()
        while stop.wait(timeout: .now() + 1) == .timedOut {
            if getppid() != parent { break }  // the benchmark died: do not linger
        }
        cluster.shutdown()
        _ = sources
    }
}
