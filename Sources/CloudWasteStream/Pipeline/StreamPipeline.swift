public import CloudWasteKafka
import CloudWastePostgres
public import Logging
public import Foundation
import Synchronization

/// What /readyz, /stats and the demo read about a running pipeline.
public struct PipelineStatus: Sendable {
    public var assignedPartitions = 0
    public var postgresHealthy = false
    public var kafkaJoined = false
    public var recordsConsumed = 0
    public var recordsCommitted = 0
    public var deadLetters = 0
    public var batchesCommitted = 0
    public var lag: [TopicPartition: Int64] = [:]
    public var startedAt = Date()
    public var lastCommitAt: Date?
    public var firstRecordAt: Date?
    /// Seconds per stage, summed over all batches: decode (consumer thread), then the writer's stages.
    public var stageSeconds: [String: Double] = [:]
    /// Records per second from the first consumed record to the last commit.
    public var throughput: Double? {
        guard let first = firstRecordAt, let last = lastCommitAt, last > first else { return nil }
        return Double(recordsCommitted) / last.timeIntervalSince(first)
    }
    public var ready: Bool { assignedPartitions > 0 && postgresHealthy && kafkaJoined }
}

/// The daemon's core: a consumer thread (poll → decode → anonymize → batch) and a writer thread
/// (one PostgreSQL transaction per batch, then publish cost trends and commit Kafka offsets for
/// lag tools). Decoding the next batch overlaps writing the current one. Partition ownership is
/// claimed in PostgreSQL (generation) on assignment; a fenced batch is dropped and its
/// partitions re-claimed and re-read from PostgreSQL's offset.
public final class StreamPipeline: @unchecked Sendable {
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

    private let queue: BlockingQueue<PreparedBatch>
    private let stopRequested = Atomic<Bool>(false)
    private let statusLock = Mutex(PipelineStatus())
    private let fencedLock = Mutex<Set<TopicPartition>>([])
    private let finished = DispatchSemaphore(value: 0)
    private let failureLock = Mutex<String?>(nil)

    private var consumer: KafkaConsumer!
    private var producer: KafkaProducer!
    private var writer: BatchWriter!
    private var offsets: OffsetStore!
    private var builder: BatchBuilder!
    private let topicNames: [String: InputTopic]

    // Consumer-thread state.
    private struct Owned { var generation: Int64; var expected: Int64 }
    private var owned: [TopicPartition: Owned] = [:]
    private var needsClaim = Set<TopicPartition>()
    private var gapChecked: [TopicPartition: Int64] = [:]
    private var decodeTime = Duration.zero
    private var consumedSinceSeal = 0
    private var recordsInCounters: [String: MetricCounter] = [:]
    private var firstAddAt: Date?
    private var lastRecordAt = Date()
    /// Stall watchdog: where each lagging partition stood at the last check, and since when.
    private var stalled: [TopicPartition: (expected: Int64, since: Date)] = [:]

    public init(config: StreamConfig, key: HMACKey, regions: RegionTable, options: Options = Options(),
                metrics: PipelineMetrics = PipelineMetrics(), logger: Logger) {
        self.config = config
        self.key = key
        self.regions = regions
        self.options = options
        self.metrics = metrics
        self.logger = logger
        queue = BlockingQueue(capacity: config.maxQueuedBatches)
        var names: [String: InputTopic] = [:]
        for t in InputTopic.allCases { names[config.topicName(t)] = t }
        topicNames = names
    }

    public var status: PipelineStatus { statusLock.withLock { $0 } }

    /// Why the pipeline stopped on its own (nil after a requested stop or --until-idle).
    public var failure: String? { failureLock.withLock { $0 } }

    /// Connects, migrates, subscribes and starts both threads.
    public func start() throws {
        let pgWriter = try PostgresConnection(connectionString: config.postgresURL, logger: logger)
        try Migrator(schema: config.postgresSchema).migrate(pgWriter)
        writer = BatchWriter(connection: pgWriter, settings: BatchWriter.Settings(config: config))
        offsets = OffsetStore(connection: try PostgresConnection(connectionString: config.postgresURL, logger: logger),
                              schema: config.postgresSchema, groupId: config.groupId, owner: options.instanceName)
        var consumerConfig = config.kafkaConfig
        consumerConfig["group.id"] = config.groupId
        consumerConfig["client.id"] = consumerConfig["client.id"] ?? "cloudwaste-stream"
        consumer = try KafkaConsumer(config: consumerConfig, logger: logger)
        producer = try KafkaProducer(config: config.kafkaConfig, logger: logger)
        let anonymizer = Anonymizer(key: key, regions: regions)
        let metrics = self.metrics
        anonymizer.onUnknownRegion = { metrics.unknownRegions(provider: $0.rawValue).increment() }
        var limits = RecordDecoder.Limits()
        limits.maxPayloadBytes = config.maxPayloadBytes
        limits.maxFutureSkewSeconds = Int64(config.maxFutureSkewHours) * 3600
        builder = BatchBuilder(decoder: RecordDecoder(limits: limits), anonymizer: anonymizer, topicNames: topicNames)
        consumer.setRebalanceListener(self)
        try consumer.subscribe(topics: options.topics.map(config.topicName))
        statusLock.withLock { $0.postgresHealthy = true }
        metrics.postgresUp.set(1)
        let writerDone = DispatchSemaphore(value: 0)
        let writerThread = Thread { [self] in
            runWriter()
            writerDone.signal()
        }
        writerThread.name = "cloudwaste-writer"
        writerThread.start()
        let consumerThread = Thread { [self] in
            runConsumer()
            consumerFinished()
            requestStop()
            writerDone.wait()
            finished.signal()
        }
        consumerThread.name = "cloudwaste-consumer"
        consumerThread.start()
        logger.info("pipeline started", metadata: ["group": "\(config.groupId)", "key_id": "\(key.keyId)",
                                                   "topics": "\(InputTopic.allCases.map(config.topicName).joined(separator: ","))"])
    }

    /// Graceful stop: the open batch is committed, the group is left.
    public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

    var isStopping: Bool { stopRequested.load(ordering: .relaxed) }

    /// Blocks until both threads ended.
    public func waitUntilFinished() { finished.wait(); finished.signal() }

    /// Blocks until both threads ended or `seconds` passed; false on time-out.
    public func waitUntilFinished(timeout seconds: Double) -> Bool {
        guard finished.wait(timeout: .now() + seconds) == .success else { return false }
        finished.signal()
        return true
    }

    // MARK: - Consumer thread

    private func runConsumer() {
        let maxRecords = config.batchMaxRecords
        let linger = Double(config.batchLingerMs) / 1000
        let startedAt = Date()
        var lastLagUpdate = Date.distantPast
        while !isStopping {
            handleFenced()
            if !needsClaim.isEmpty { claimPending() }
            let waitMs: Int32
            if let first = firstAddAt {
                waitMs = Int32(max(0, min(100, (linger - Date().timeIntervalSince(first)) * 1000)))
            } else {
                waitMs = 100
            }
            let messages: [KafkaMessage]
            do {
                messages = try consumer.poll(maxMessages: max(1, maxRecords - builder.count), timeoutMs: waitMs)
            } catch {
                fail("Kafka consumer failed: \(error)")
                break
            }
            statusLock.withLock { $0.kafkaJoined = $0.kafkaJoined || !consumer.assignment.isEmpty }
            for m in messages { add(m) }
            if !messages.isEmpty { lastRecordAt = Date() }
            if builder.count >= maxRecords || (builder.count > 0 && firstAddAt.map { Date().timeIntervalSince($0) >= linger } == true) {
                enqueueOpenBatch()
            }
            if Date().timeIntervalSince(lastLagUpdate) >= 1 {
                restartStalledPartitions(lag: updateLag())
                lastLagUpdate = Date()
            }
            if let idle = options.untilIdleSeconds, isIdle(for: idle, startedAt: startedAt) {
                logger.info("caught up and idle for \(idle) s: stopping (--until-idle)")
                break
            }
        }
        enqueueOpenBatch()
        _ = queue.waitUntilDrained(timeout: 60)
        consumer.close(timeoutMs: 10_000)
        _ = queue.waitUntilDrained(timeout: 30)
    }

    private func add(_ m: KafkaMessage) {
        let tp = m.topicPartition
        guard var state = owned[tp] else { return }  // not ours (yet): it will be re-read after the claim
        if state.expected >= 0 && m.offset < state.expected { return }  // fetched before a seek
        if state.expected >= 0 && m.offset > state.expected && gapChecked[tp] != state.expected {
            // Never skip silently: re-read from where we stand once. If the same gap comes back it
            // is real (compaction, transaction markers, retention) and is accepted.
            gapChecked[tp] = state.expected
            logger.info("offset gap on \(tp): expected \(state.expected), got \(m.offset); re-reading")
            try? consumer.seek(tp, to: state.expected)
            return
        }
        if firstAddAt == nil { firstAddAt = Date() }
        let started = ContinuousClock.now
        builder.add(m, generation: state.generation, expectedOffset: state.expected)
        decodeTime += ContinuousClock.now - started
        state.expected = m.offset + 1
        owned[tp] = state
        consumedSinceSeal += 1
        if let counter = recordsInCounters[m.topic] {
            counter.increment()
        } else {
            let counter = metrics.recordsIn(topic: m.topic)
            recordsInCounters[m.topic] = counter
            counter.increment()
        }
    }

    /// `backPressure: false` inside rebalance callbacks, where polling again is not allowed.
    private func enqueueOpenBatch(backPressure: Bool = true) {
        guard builder.count > 0 else { return }
        let batch = builder.seal()
        let decoded = Double(decodeTime.components.seconds) + Double(decodeTime.components.attoseconds) / 1e18
        decodeTime = .zero
        let consumed = consumedSinceSeal
        consumedSinceSeal = 0
        let firstAdd = firstAddAt
        statusLock.withLock {
            $0.stageSeconds["decode_anonymize", default: 0] += decoded
            $0.recordsConsumed += consumed
            if $0.firstRecordAt == nil { $0.firstRecordAt = firstAdd }
        }
        firstAddAt = nil
        // Back-pressure. The writer is normally the slower side, so the queue is often full for
        // a moment: wait for room without touching the partitions (librdkafka's own prefetch
        // limits bound memory meanwhile). Only a writer stuck for longer (PostgreSQL down) makes
        // us pause every partition and keep polling, so that the group is still served.
        if backPressure && !queue.waitForRoom(timeout: 1) {
            let paused = Array(owned.keys)
            consumer.pause(paused)
            while !queue.waitForRoom(timeout: 0.1) && !isStopping {
                if let more = try? consumer.poll(maxMessages: 1000, timeoutMs: 100) {
                    for m in more { add(m) }
                }
            }
            let resumed = paused.filter { owned[$0] != nil && !needsClaim.contains($0) }
            // librdkafka resumes from the last record it handed out, which is where we stand;
            // the positions are also set explicitly (asynchronously, hundreds of partitions
            // must not block), and add() skips or re-reads anything that does not line up.
            var positions: [TopicPartition: Int64] = [:]
            for tp in resumed where owned[tp]!.expected >= 0 { positions[tp] = owned[tp]!.expected }
            consumer.resume(resumed)
            do { try consumer.seek(positions, timeoutMs: 0) } catch { logger.warning("seek after resume failed", metadata: ["error": "\(error)"]) }
        }
        queue.put(batch)
    }

    private func handleFenced() {
        let fenced = fencedLock.withLock { f -> Set<TopicPartition> in
            let out = f
            f.removeAll()
            return out
        }
        guard !fenced.isEmpty else { return }
        let ours = fenced.filter { owned[$0] != nil }
        builder.discard(ours)
        for tp in ours { owned[tp] = nil }
        needsClaim.formUnion(ours.filter { consumer.assignment.contains($0) })
        consumer.pause(Array(ours))
    }

    /// Claims partitions whose claim failed or was fenced, then seeks them to PostgreSQL's offset.
    private func claimPending() {
        let pending = needsClaim.filter { consumer.assignment.contains($0) }
        needsClaim = pending
        guard !pending.isEmpty else { return }
        do {
            let claims = try offsets.claim(Array(pending))
            for (tp, claim) in claims {
                try consumer.seek(tp, to: claim.nextOffset ?? config.startOffsetWithoutHistory)
                owned[tp] = Owned(generation: claim.generation, expected: claim.nextOffset ?? -1)
                needsClaim.remove(tp)
            }
            consumer.resume(Array(claims.keys))
            logger.info("re-claimed partitions", metadata: ["partitions": "\(claims.keys.sorted().map(\.description).joined(separator: ","))"])
        } catch {
            logger.warning("cannot claim partitions yet; retrying", metadata: ["error": "\(error)"])
            try? offsets.reconnect()
            Thread.sleep(forTimeInterval: 0.5)
        }
    }

    private func isIdle(for seconds: Double, startedAt: Date) -> Bool {
        guard Date().timeIntervalSince(lastRecordAt) >= seconds, builder.count == 0, queue.isDrained else { return false }
        let assignment = consumer.assignment
        if assignment.isEmpty { return Date().timeIntervalSince(startedAt) >= max(seconds, 30) }
        guard needsClaim.isEmpty else { return false }
        for tp in assignment {
            guard let state = owned[tp] else { return false }
            guard let (_, high) = consumer.cachedWatermarks(tp) else { return false }
            if max(state.expected, 0) < high { return false }
        }
        return true
    }

    /// A partition that has records to read (or was never fetched) but delivered none for
    /// `partitionStallSeconds` is re-seeked to where we stand and resumed. librdkafka 2.0 can
    /// leave a partition idle after a lost session (brokers down longer than session.timeout.ms,
    /// then a rejoin); nothing is lost by re-seeking, because positions come from our own state.
    private func restartStalledPartitions(lag: [TopicPartition: Int64]) {
        let now = Date()
        var restart: [TopicPartition: Int64] = [:]
        for (tp, state) in owned {
            // Started at the end on purpose (auto.offset.reset=latest) and nothing new yet:
            // the older records are not ours to read.
            if state.expected < 0 && config.startOffsetWithoutHistory == KafkaOffset.end { continue }
            // No lag figure means librdkafka has no watermarks: it has not fetched the partition
            // at all since it was assigned, which counts as lagging too.
            guard (lag[tp] ?? 1) > 0, !queue.isFull else {
                stalled[tp] = nil
                continue
            }
            if let s = stalled[tp], s.expected == state.expected {
                if now.timeIntervalSince(s.since) >= config.partitionStallSeconds {
                    restart[tp] = state.expected >= 0 ? state.expected : config.startOffsetWithoutHistory
                    stalled[tp] = (state.expected, now)
                }
            } else {
                stalled[tp] = (state.expected, now)
            }
        }
        for tp in stalled.keys where owned[tp] == nil { stalled[tp] = nil }
        guard !restart.isEmpty else { return }
        let positions = consumer.positions(Array(restart.keys))
        logger.warning("partitions with records to read delivered none; re-seeking them", metadata: [
            "partitions": "\(restart.keys.sorted().map { "\($0)@\(restart[$0]!) (librdkafka position \(positions[$0] ?? -1))" }.joined(separator: ", "))",
            "stall_seconds": "\(config.partitionStallSeconds)",
        ])
        metrics.partitionRestarts.increment(by: restart.count)
        consumer.resume(Array(restart.keys))
        do { try consumer.seek(restart, timeoutMs: 0) } catch { logger.warning("re-seek of stalled partitions failed; will retry", metadata: ["error": "\(error)"]) }
    }

    /// Records left per owned partition, where librdkafka knows the high watermark.
    private func updateLag() -> [TopicPartition: Int64] {
        var lag: [TopicPartition: Int64] = [:]
        for (tp, state) in owned {
            if let (_, high) = consumer.cachedWatermarks(tp) {
                let l = max(0, high - max(state.expected, 0))
                lag[tp] = l
                metrics.partitionLag(topic: tp.topic, partition: tp.partition).set(Double(l))
            }
        }
        statusLock.withLock {
            $0.lag = lag
            $0.assignedPartitions = consumer.assignment.count
        }
        metrics.ready.set(status.ready ? 1 : 0)
        if let rss = ProcessMemory.residentBytes { metrics.residentMemory.set(Double(rss)) }
        return lag
    }

    private func fail(_ message: String) {
        logger.error("\(message)")
        failureLock.withLock { $0 = $0 ?? message }
        requestStop()
    }

    // MARK: - Writer thread

    private func runWriter() {
        var lastTick = Date.distantPast
        republishTrends()
        let recomputeInterval = Double(config.windowRecomputeIntervalMs) / 1000
        while true {
            guard let batch = queue.take(timeout: min(0.5, max(0.05, recomputeInterval))) else {
                if isStopping && queue.isDrained && consumerClosed {
                    // Nothing may stay deferred when the pipeline ends (--until-idle, replay, stop).
                    if config.windowsEnabled && writer.hasDeferredMonths { tick() }
                    return
                }
                let since = Date().timeIntervalSince(lastTick)
                if config.windowsEnabled && (since >= 5 || (writer.hasDeferredMonths && since >= recomputeInterval)) {
                    lastTick = Date()
                    tick()
                }
                continue
            }
            write(batch)
            queue.done()
        }
    }

    private var consumerClosed: Bool { finishedConsumer.load(ordering: .relaxed) }
    private let finishedConsumer = Atomic<Bool>(false)

    /// Recomputes deferred account-months, finalizes due months and publishes the changed rows.
    private func tick() {
        do {
            let (emissions, late, finalized) = try writer.recomputeAndFinalizeNow(keyId: key.keyId)
            metrics.lateRecords.increment(by: late)
            metrics.windowsFinalized.increment(by: finalized)
            publish(emissions)
        } catch {
            logger.debug("window tick failed", metadata: ["error": "\(error)"])
        }
    }

    private func republishTrends() {
        guard config.windowsEnabled, let pending = try? writer.unpublishedTrends(), !pending.isEmpty else { return }
        logger.info("re-publishing \(pending.count) cost-trend rows left unpublished by an earlier run")
        publish(pending)
    }

    /// Writes a batch until it is committed, fenced away, or (data errors) bisected down to the
    /// row PostgreSQL rejects, which becomes a dead letter. Infrastructure errors are retried with
    /// capped exponential back-off and jitter, for as long as it takes.
    private func write(_ original: PreparedBatch) {
        var batch = original
        var attempt = 0
        while !batch.isEmpty {
            let started = Date()
            do {
                try publishDeadLetters(batch)
                switch try writer.write(batch) {
                case .committed(let counts, let emissions):
                    committed(batch, counts: counts, seconds: Date().timeIntervalSince(started))
                    publish(emissions)
                    return
                case .fenced(let partitions):
                    metrics.fencedBatches.increment()
                    logger.warning("batch fenced: partitions now owned elsewhere", metadata: ["partitions": "\(partitions.sorted().map(\.description).joined(separator: ","))"])
                    fencedLock.withLock { $0.formUnion(partitions) }
                    batch = batch.removing(partitions)
                }
            } catch let error as PostgresError where error.isDataError {
                if batch.items.count > 1 {
                    logger.warning("PostgreSQL rejected a batch (\(error)); bisecting to find the record")
                    let (a, b) = batch.split(at: batch.items.count / 2)
                    write(a)
                    batch = b
                } else {
                    batch.items[0].outcome = .deadLetter(DeadLetter(
                        rejection: RecordRejection(.rejectedByDatabase, field: error.sqlState),
                        key: nil, value: nil))
                }
            } catch {
                attempt += 1
                if error is PostgresError {
                    metrics.postgresErrors.increment()
                    metrics.postgresUp.set(0)
                    statusLock.withLock { $0.postgresHealthy = false }
                } else {
                    metrics.kafkaErrors.increment()
                }
                let backoff = min(config.retryMaxBackoffSeconds, 0.1 * pow(2, Double(min(attempt, 12))))
                let sleep = backoff * Double.random(in: 0.5...1.0)
                logger.warning("batch not written; retrying in \(String(format: "%.1f", sleep)) s", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                Thread.sleep(forTimeInterval: sleep)
                if error is PostgresError { try? writer.reconnect() }
            }
        }
    }

    private func committed(_ batch: PreparedBatch, counts: WriteCounts, seconds: Double) {
        metrics.batchesCommitted.increment()
        metrics.batchRecords.observe(Double(batch.items.count))
        metrics.commitSeconds.observe(seconds)
        metrics.postgresUp.set(1)
        metrics.lateRecords.increment(by: counts.lateRecords)
        metrics.windowsFinalized.increment(by: counts.finalizedMonths)
        for (table, n) in counts.rows where n > 0 { metrics.rowsWritten(table: table).increment(by: n) }
        for item in batch.items {
            if case .deadLetter(let d) = item.outcome { metrics.deadLetters(reason: d.rejection.code.rawValue).increment() }
        }
        statusLock.withLock {
            for (stage, seconds) in counts.stageSeconds { $0.stageSeconds[stage, default: 0] += seconds }
            $0.postgresHealthy = true
            $0.recordsCommitted += batch.items.count
            $0.deadLetters += counts.deadLetters
            $0.batchesCommitted += 1
            $0.lastCommitAt = Date()
        }
        var kafkaOffsets: [TopicPartition: Int64] = [:]
        for span in batch.spans { kafkaOffsets[span.partition] = span.nextOffset }
        consumer.commit(kafkaOffsets)
    }

    /// Dead letters go to their topic before the batch commits (the table keeps only a digest, so
    /// the raw bytes could not be re-sent after a crash): at least once on the topic, exactly once
    /// in the table. Each carries its source topic, partition, offset and reason as headers.
    private func publishDeadLetters(_ batch: PreparedBatch) throws {
        var sent = 0
        for item in batch.items {
            guard case .deadLetter(let d) = item.outcome, d.value != nil || d.key != nil || d.rejection.code == .emptyPayload else { continue }
            try producer.send(topic: config.deadLetterTopic, key: d.key, value: d.value, headers: [
                ("cw.source.topic", Array(item.source.topic.utf8)),
                ("cw.source.partition", Array(String(item.source.partition).utf8)),
                ("cw.source.offset", Array(String(item.source.offset).utf8)),
                ("cw.reason", Array(d.rejection.description.utf8)),
            ])
            sent += 1
        }
        if sent > 0 { try producer.flush(timeoutMs: 30_000) }
    }

    /// Publishes changed cost-trend rows after their commit. If Kafka is unavailable the rows stay
    /// marked unpublished in PostgreSQL and go out on a later tick or restart.
    private func publish(_ emissions: [TrendEmission]) {
        guard !emissions.isEmpty else { return }
        do {
            for e in emissions {
                try producer.send(topic: config.costTrendTopic, key: Array(e.key.utf8), value: e.json.isEmpty ? nil : Array(e.json.utf8))
            }
            try producer.flush(timeoutMs: 10_000)
            try writer.markPublished(emissions.filter { !$0.json.isEmpty })
            metrics.trendsEmitted.increment(by: emissions.count)
        } catch {
            logger.warning("cost-trend rows not published yet; will retry", metadata: ["error": "\(error)"])
        }
    }

    /// Called by the consumer thread after it closed the consumer.
    func consumerFinished() { finishedConsumer.store(true, ordering: .relaxed) }
}

extension StreamPipeline: KafkaRebalanceListener {
    public func partitionsAssigned(_ partitions: [TopicPartition]) -> (offsets: [TopicPartition: Int64], paused: Set<TopicPartition>) {
        do {
            let claims = try offsets.claim(partitions)
            var out: [TopicPartition: Int64] = [:]
            for (tp, claim) in claims {
                owned[tp] = Owned(generation: claim.generation, expected: claim.nextOffset ?? -1)
                out[tp] = claim.nextOffset ?? config.startOffsetWithoutHistory
            }
            statusLock.withLock { $0.kafkaJoined = true }
            return (out, [])
        } catch {
            logger.warning("cannot claim assigned partitions in PostgreSQL; they stay paused until it answers", metadata: ["error": "\(error)"])
            try? offsets.reconnect()
            needsClaim.formUnion(partitions)
            return ([:], Set(partitions))
        }
    }

    public func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) {
        // Commit what was read from these partitions before they move (bounded: a slow commit is
        // still safe, because the new owner's claim fences it).
        enqueueOpenBatch(backPressure: false)
        if !queue.waitUntilDrained(timeout: 30) {
            logger.warning("revocation: the writer did not drain within 30 s; its batch will be fenced if the new owner claimed first")
        }
        for tp in partitions {
            owned[tp] = nil
            needsClaim.remove(tp)
        }
        builder.discard(Set(partitions))
    }
}
