public import CloudWasteKafka
public import Foundation

/// What one writer is doing, for /stats, the status page and the demo.
public struct WriterStatus: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable { case starting, idle, writing, retrying, stopped }
    public var index: Int
    public var state: State = .starting
    public var batchesCommitted = 0
    public var recordsCommitted = 0
    public var lastCommitAt: Date?
    /// The last error while retrying (terse: SQLSTATE and the server's primary message).
    public var lastError: String?
    public var deadLetters = 0
    /// Seconds per stage of this writer's batch transactions, summed.
    public var stageSeconds: [String: Double] = [:]

    /// Whether this writer can write to PostgreSQL: not retrying a batch it could not write.
    public var isHealthy: Bool { state != .retrying }
}

/// What the consumer thread reports about itself (it alone writes it).
public struct ConsumerStatus: Sendable {
    public var assignedPartitions = 0
    public var kafkaJoined = false
    /// A Kafka broker answers (false from librdkafka's "all brokers down" until one answers).
    public var kafkaReachable = true
    public var recordsConsumed = 0
    public var lag: [TopicPartition: Int64] = [:]
    public var firstRecordAt: Date?
    /// The latest Kafka client error (no broker reachable, authentication, unknown topic).
    public var kafkaDiagnosis: String?
    /// Seconds per stage of the consumer thread (decoding, waiting for a writer), summed.
    public var stageSeconds: [String: Double] = [:]
}

/// What the output thread reports about itself (it alone writes it).
public struct OutputStatus: Sendable {
    /// Cost-trend recomputes done by this instance.
    public var windowRecomputes = 0
}

/// What /readyz, /stats and the demo read about a running pipeline: composed on read from what
/// each thread reports about itself (`ConsumerStatus`, one `WriterStatus` per writer,
/// `OutputStatus`), so no thread writes another's figures.
public struct PipelineStatus: Sendable {
    public var assignedPartitions = 0
    public var kafkaJoined = false
    /// A Kafka broker answers (false from librdkafka's "all brokers down" until one answers).
    public var kafkaReachable = true
    public var stopping = false
    public var recordsConsumed = 0
    public var recordsCommitted = 0
    public var deadLetters = 0
    public var batchesCommitted = 0
    public var lag: [TopicPartition: Int64] = [:]
    public var startedAt = Date()
    public var lastCommitAt: Date?
    public var firstRecordAt: Date?
    public var writers: [WriterStatus] = []
    /// Cost-trend recomputes done by this instance.
    public var windowRecomputes = 0
    /// Seconds per stage, summed over all batches: decode (consumer thread), then the writers' stages.
    public var stageSeconds: [String: Double] = [:]
    public init() {}

    public init(consumer: ConsumerStatus, writers: [WriterStatus], output: OutputStatus, stopping: Bool, startedAt: Date) {
        assignedPartitions = consumer.assignedPartitions
        kafkaJoined = consumer.kafkaJoined
        kafkaReachable = consumer.kafkaReachable
        recordsConsumed = consumer.recordsConsumed
        lag = consumer.lag
        firstRecordAt = consumer.firstRecordAt
        kafkaDiagnosis = consumer.kafkaDiagnosis
        stageSeconds = consumer.stageSeconds
        self.writers = writers
        for w in writers {
            recordsCommitted += w.recordsCommitted
            deadLetters += w.deadLetters
            batchesCommitted += w.batchesCommitted
            if let at = w.lastCommitAt, lastCommitAt.map({ at > $0 }) ?? true { lastCommitAt = at }
            stageSeconds.merge(w.stageSeconds, uniquingKeysWith: +)
        }
        windowRecomputes = output.windowRecomputes
        self.stopping = stopping
        self.startedAt = startedAt
    }

    /// Records per second from the first consumed record to the last commit.
    public var throughput: Double? {
        guard let first = firstRecordAt, let last = lastCommitAt, last > first else { return nil }
        return Double(recordsCommitted) / last.timeIntervalSince(first)
    }
    /// The latest Kafka client error (no broker reachable, authentication, unknown topic).
    public var kafkaDiagnosis: String?

    /// Every writer can write to PostgreSQL. Each writer's own status says so (one failing writer
    /// is not hidden by a healthy one: its lane's partitions are not being stored).
    public var postgresHealthy: Bool { writers.allSatisfy(\.isHealthy) }

    /// The error of a failing writer, else the latest one any writer reported.
    public var postgresDiagnosis: String? {
        writers.first { !$0.isHealthy }?.lastError ?? writers.compactMap(\.lastError).first
    }

    public var ready: Bool { assignedPartitions > 0 && postgresHealthy && kafkaJoined && kafkaReachable && !stopping }

    /// Why the pipeline is not ready (nil when it is), for /readyz and the status page.
    public var notReadyReason: String? {
        if stopping { return "stopping" }
        if !kafkaReachable { return "Kafka brokers unreachable" + (kafkaDiagnosis.map { ": \($0)" } ?? "") }
        if !postgresHealthy {
            let failing = writers.filter { !$0.isHealthy }.count
            return "\(failing) of \(writers.count) writers cannot write their batches" + (postgresDiagnosis.map { ": \($0)" } ?? "")
        }
        if assignedPartitions == 0 || !kafkaJoined {
            return "no partitions assigned yet" + (kafkaDiagnosis.map { " (Kafka: \($0))" } ?? "")
        }
        return nil
    }
}
