public import CloudWasteKafka
import CloudWastePostgres
public import Logging
public import Foundation
import Synchronization

/// The daemon's core, composed of threads that each own their state:
///
/// * the **consumer thread** (`ConsumerLoop`): poll → decode, anonymize and COPY-encode on every
///   core (`ParallelPreparation`) → the rows into the open batch of the writer lane that owns the
///   partition, in order; claims partitions on assignment;
/// * **writer threads** (`PartitionWriter`, `pipeline.writers`, default one per core): one
///   PostgreSQL transaction per batch on a connection each, for a disjoint set of partitions;
/// * the **output thread** (`OutputWorker`): dead letters, the cost-trend recompute and its
///   publication, after the commits.
///
/// They share only small Sendable boxes: `PipelineState`, each `WriterLane`'s queue, the
/// `OutputInbox`. A stop (SIGTERM, `--until-idle`, a fatal error) finishes or drops the open
/// batches within the graceful period, even while PostgreSQL or Kafka is unreachable.
public final class StreamPipeline: Sendable {
    public struct Options: Sendable {
        /// Exit once every assigned partition is caught up and no record came for this long.
        public var untilIdleSeconds: Double?
        public var instanceName: String
        /// The input topics to read (all by default; a replay may rebuild from some).
        public var topics: [InputTopic]
        public init(untilIdleSeconds: Double? = nil, instanceName: String = "\(ProcessInfo.processInfo.hostName):\(getpid())",
                    topics: [InputTopic] = InputTopic.allCases) {
            self.untilIdleSeconds = untilIdleSeconds
            self.instanceName = instanceName
            self.topics = topics
        }
    }

    let config: StreamConfig
    let key: HMACKey
    let regions: RegionTable
    let options: Options
    let logger: Logger
    public let metrics: PipelineMetrics

    private let state: PipelineState
    private let lanes: [WriterLane]
    private let inbox = OutputInbox()
    private let finished = DispatchSemaphore(value: 0)
    private let writersRunning: Atomic<Int>
    private let outputInterrupter = Mutex<PostgresInterrupter?>(nil)
    private let started = Atomic<Bool>(false)

    public init(config: StreamConfig, key: HMACKey, regions: RegionTable, options: Options = Options(),
                metrics: PipelineMetrics = PipelineMetrics(), logger: Logger) {
        self.config = config
        self.key = key
        self.regions = regions
        self.options = options
        self.metrics = metrics
        self.logger = logger
        state = PipelineState(gracePeriod: .seconds(config.shutdownGraceSeconds))
        lanes = (0..<config.writerCount).map { WriterLane(index: $0, capacity: config.maxQueuedBatches) }
        writersRunning = Atomic(config.writerCount)
    }

    public var status: PipelineStatus { state.status(writers: lanes.map(\.status)) }

    /// Why the pipeline stopped on its own (nil after a requested stop or --until-idle).
    public var failure: String? { state.failure }

    public var isStopping: Bool { state.isStopping }

    /// Migrates, then starts the output thread, the writers and the consumer; returns once each
    /// has its connections (or throws the first failure, after stopping the others).
    public func start() throws {
        precondition(!started.exchange(true, ordering: .relaxed), "a pipeline starts once")
        let librdkafka = LibrdkafkaVersion.current
        logger.info("cloudwaste-stream \(ProductVersion.current) with librdkafka \(librdkafka)")
        if librdkafka.fetchersSleepOnFullQueue {
            logger.warning("librdkafka \(librdkafka) is older than 2.3.0: a fetcher that finds the local queue full sleeps up to a second (librdkafka #2879), which the consumer works around by waking the fetchers during a backlog; load a current librdkafka (README: Running against a real Kafka)")
        }
        metrics.recordBuildInfo(version: ProductVersion.current, librdkafka: librdkafka.text)
        if !HeapRetention.apply() { logger.warning("the C library did not take the heap settings: batches may fault their buffers in afresh") }
        let setup = try PostgresConnection(connectionString: config.postgresURL, logger: logger)
        try Migrator(schema: config.postgresSchema).migrate(setup)
        setup.close()
        metrics.postgresUp.set(1)

        let startup = StartupGate(threads: 2 + lanes.count)
        let allDone = DispatchGroup()
        let (config, key, regions, options, state, metrics, logger, inbox, lanes) =
            (self.config, self.key, self.regions, self.options, self.state, self.metrics, self.logger, self.inbox, self.lanes)

        allDone.enter()
        DedicatedThread.start(name: "cw-output") { [self] in
            defer { allDone.leave() }
            do {
                let worker = try OutputWorker(config: config, keyId: key.keyId, state: state, inbox: inbox, metrics: metrics,
                                              logger: logger)
                outputInterrupter.withLock { $0 = worker.interrupter }
                startup.ready()
                worker.run()
            } catch {
                startup.failed("cannot start the output thread: \(error)")
            }
        }
        for lane in lanes {
            allDone.enter()
            DedicatedThread.start(name: "cw-writer-\(lane.index)") { [self] in
                defer {
                    // The last writer to stop finishes the output thread's inbox.
                    if writersRunning.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { inbox.finish() }
                    allDone.leave()
                }
                do {
                    let writer = try PartitionWriter(lane: lane, config: config, state: state, metrics: metrics, output: inbox,
                                                     logger: logger)
                    startup.ready()
                    writer.run()
                } catch {
                    startup.failed("cannot start writer \(lane.index): \(error)")
                }
            }
        }
        allDone.enter()
        DedicatedThread.start(name: "cw-consumer") { [self] in
            defer {
                for lane in lanes { lane.queue.finish() }  // the writers stop once they wrote what is queued
                state.requestStop()  // --until-idle or a failure: the others follow
                allDone.leave()
            }
            do {
                let loop = try ConsumerLoop(config: config, key: key, regions: regions, options: options, lanes: lanes,
                                            state: state, metrics: metrics, logger: logger)
                startup.ready()
                loop.run()
            } catch {
                startup.failed("cannot start the consumer: \(error)")
            }
        }
        allDone.notify(queue: .global()) { [finished] in finished.signal() }
        DedicatedThread.start(name: "cw-stop-timer") { [self] in enforceStopDeadline() }

        if let failure = startup.wait() {
            state.fail(failure)
            _ = waitUntilFinished(timeout: Double(config.shutdownGraceSeconds) + 5)
            throw PipelineStartFailure(description: failure)
        }
        logger.info("pipeline started", metadata: [
            "group": "\(config.groupId)", "key_id": "\(key.keyId)", "writers": "\(lanes.count)",
            "topics": "\(options.topics.map(config.topicName).joined(separator: ","))",
        ])
    }

    /// Graceful stop: open batches are committed (or dropped once the graceful period is nearly
    /// over), the group is left.
    public func requestStop() { state.requestStop() }

    /// Blocks until every thread ended.
    public func waitUntilFinished() { finished.wait(); finished.signal() }

    /// Blocks until every thread ended or `seconds` passed; false on time-out.
    public func waitUntilFinished(timeout seconds: Double) -> Bool {
        guard finished.wait(timeout: .now() + seconds) == .success else { return false }
        finished.signal()
        return true
    }

    /// Once a stop is requested: shortly before the graceful period ends, breaks the connections
    /// of threads still stuck in PostgreSQL calls (a frozen server answers nothing), so that they
    /// give up and the process ends in time.
    private func enforceStopDeadline() {
        while !state.isStopping { state.sleep(3600) }
        if waitUntilFinished(timeout: state.secondsLeft(margin: .seconds(5))) { return }
        logger.warning("stop deadline near: interrupting PostgreSQL connections that are still busy")
        for lane in lanes { lane.interrupter?.interrupt() }
        outputInterrupter.withLock { $0?.interrupt() }
    }
}

public struct PipelineStartFailure: Error, CustomStringConvertible {
    public var description: String
}

/// Counts the pipeline's threads in as they finish starting; the first failure wins.
private final class StartupGate: Sendable {
    private let remaining: Mutex<Int>
    private let failure = Mutex<String?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(threads: Int) { remaining = Mutex(threads) }

    func ready() {
        if remaining.withLock({ $0 -= 1; return $0 == 0 }) { done.signal() }
    }

    func failed(_ message: String) {
        failure.withLock { $0 = $0 ?? message }
        done.signal()
    }

    /// Waits for every thread (or the first failure); returns the failure.
    func wait() -> String? {
        done.wait()
        return failure.withLock { $0 }
    }
}
