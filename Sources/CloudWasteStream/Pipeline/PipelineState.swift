public import CloudWasteKafka
import Foundation
import Synchronization

/// What the pipeline's threads share: a small Sendable box of locks, each around one concern.
/// Everything else is owned by exactly one thread (the consumer loop, each writer, the output
/// worker).
final class PipelineState: Sendable {
    /// Each thread's report on itself (the writers' are in their lanes): `StreamPipeline.status`
    /// composes them.
    let consumerStatus = Mutex(ConsumerStatus())
    let outputStatus = Mutex(OutputStatus())
    let startedAt = Date()
    /// When a stop was requested (nil while running); waited on by `sleep`.
    private let stopRequestedAt = Guarded<ContinuousClock.Instant?>(nil)
    /// How long a stop may take (SPEC §10: the graceful period).
    let gracePeriod: Duration
    private let failureText = Mutex<String?>(nil)
    /// Partitions a writer found fenced, with the generation its batch carried.
    private let fencedPartitions = Mutex<[TopicPartition: Int64]>([:])
    /// Next offsets committed in PostgreSQL, for the consumer to commit to Kafka (lag tools).
    private let committedOffsets = Mutex<[TopicPartition: Int64]>([:])

    init(gracePeriod: Duration) { self.gracePeriod = gracePeriod }

    // MARK: Stopping

    var isStopping: Bool { stopRequestedAt.withLock { $0 != nil } }

    func requestStop() {
        stopRequestedAt.withLock(broadcast: true) { at in if at == nil { at = .now } }
    }

    /// When the stop must be complete (nil while running).
    var stopDeadline: ContinuousClock.Instant? { stopRequestedAt.withLock { $0.map { $0 + gracePeriod } } }

    /// Seconds left until `margin` before the stop deadline (infinite while running).
    func secondsLeft(margin: Duration = .zero) -> Double {
        guard let deadline = stopDeadline else { return .infinity }
        return max(0, (deadline - margin - .now).seconds)
    }

    /// Sleeps up to `seconds`; returns early (true) when a stop is requested meanwhile. Once
    /// stopping, it sleeps the whole time (retries keep their back-off until the deadline).
    @discardableResult
    func sleep(_ seconds: Double) -> Bool {
        if isStopping {
            Thread.sleep(forTimeInterval: seconds)
            return true
        }
        return stopRequestedAt.wait(until: Date(timeIntervalSinceNow: seconds), for: { $0 != nil }) { _, stopped in stopped }
    }

    /// The pipeline's status as its threads last reported it, with these writers' own.
    func status(writers: [WriterStatus]) -> PipelineStatus {
        PipelineStatus(consumer: consumerStatus.withLock { $0 }, writers: writers, output: outputStatus.withLock { $0 },
                       stopping: isStopping, startedAt: startedAt)
    }

    // MARK: Failure

    /// Why the pipeline stopped on its own (nil after a requested stop or --until-idle).
    var failure: String? { failureText.withLock { $0 } }

    func fail(_ message: String) {
        failureText.withLock { $0 = $0 ?? message }
        requestStop()
    }

    // MARK: Hand-overs between threads

    func reportFenced(_ spans: [PartitionSpan]) {
        fencedPartitions.withLock { f in for s in spans { f[s.partition] = s.generation } }
    }

    func takeFenced() -> [TopicPartition: Int64] {
        fencedPartitions.withLock { f in defer { f.removeAll() }; return f }
    }

    func noteCommitted(_ spans: [PartitionSpan]) {
        committedOffsets.withLock { c in
            for s in spans where s.nextOffset > (c[s.partition] ?? -1) { c[s.partition] = s.nextOffset }
        }
    }

    func takeCommittedOffsets() -> [TopicPartition: Int64] {
        committedOffsets.withLock { c in defer { c.removeAll() }; return c }
    }
}
