import CoreMetrics
import CloudWasteKafka
import CloudWastePostgres
import Foundation
import Logging

/// The consumer thread: polls librdkafka, claims assigned partitions in PostgreSQL, has each
/// poll's messages decoded, validated and anonymized on every core (`ParallelPreparation`), and
/// adds them in order, as COPY rows, to the open batch of the writer lane that owns their partition. A partition always goes to the same lane, so it is only
/// ever written by one writer: per-partition order and fencing hold as with a single writer.
/// Batches are handed over adaptively (`BatchPolicy`). When a lane's queue is full the thread
/// waits for room; if its writer stays stuck (PostgreSQL down), the lane's partitions are paused
/// while the group keeps being served. Created on, and owned by, its thread; it is also the
/// rebalance listener, which librdkafka calls on this same thread inside `poll` and `close`.
final class ConsumerLoop: KafkaRebalanceListener {
    private let config: StreamConfig
    private let options: StreamPipeline.Options
    private let state: PipelineState
    private let metrics: PipelineMetrics
    private let logger: Logger
    private let lanes: [WriterLane]
    private let consumer: KafkaConsumer
    private let offsetsDB: PostgresConnection
    private let offsets: OffsetStore
    private let builders: [BatchBuilder]
    /// Decodes and anonymizes each poll's messages on every core before they are added in order.
    private let preparation: ParallelPreparation
    private let policy: BatchPolicy

    /// Each assigned partition's state: claimed or not, held for privacy, where it stands.
    private var partitions: PartitionStates
    /// A sealed batch per lane that its stuck writer has no room for yet (its partitions are paused).
    private var held: [PreparedBatch?]
    private var decodeTime = Duration.zero
    /// Time this thread waited for room behind a busy writer (back-pressure, not work).
    private var waitTime = Duration.zero
    /// Time this thread spent in librdkafka's poll while records were flowing (a batch open or
    /// messages returned, not an idle wait): waiting for fetched messages, a starved consumer.
    private var pollTime = Duration.zero
    /// Time the data partitions were held for the privacy catch-up, since the last report.
    private var catchUpSeconds = 0.0
    private var consumedSinceReport = 0
    private var recordsInCounters: [String: Counter] = [:]
    /// The last topic's hash, for `lane(of:)`.
    private var lastTopicHash: (topic: String, hash: UInt64)?
    /// The counter of the last topic counted (a poll's messages come in runs of one topic).
    private var lastRecordsIn: (topic: String, counter: Counter)?
    private var lastRecordAt = Date()
    private var firstRecordAt: Date?
    private var everAssigned = false
    /// Next offset committed in PostgreSQL per owned partition (from its claim, then from the
    /// writers' commits), for the lag operators see; nil before anything was committed.
    private var committedNext: [TopicPartition: Int64] = [:]
    /// Kafka client errors already counted in the metric, and when the last one came.
    private var clientErrorsCounted = 0
    private var lastClientErrorAt = Date.distantPast
    /// Fetcher wakes (`KafkaConsumer.fetcherWakes`) already counted in the metric.
    private var fetcherWakesCounted = 0
    /// Since when no Kafka broker has answered (nil while one does): nothing is idle meanwhile.
    private var unreachableSince: Date?
    private let startedAt = Date()
    /// Decides which data partitions wait for the privacy requests at an assignment, and when
    /// the wait is over.
    private var privacyCatchUp: PrivacyCatchUp

    init(config: StreamConfig, key: HMACKey, regions: RegionTable, options: StreamPipeline.Options, lanes: [WriterLane],
         state: PipelineState, metrics: PipelineMetrics, logger: Logger) throws {
        self.config = config
        self.options = options
        self.state = state
        self.metrics = metrics
        self.logger = logger
        self.lanes = lanes
        policy = BatchPolicy(config: config)
        privacyCatchUp = PrivacyCatchUp(topic: options.topics.contains(.privacyRequests) ? config.topicName(.privacyRequests) : nil,
                                        timeoutSeconds: config.privacyCatchUpSeconds,
                                        startsAtEnd: config.startOffsetWithoutHistory == KafkaOffset.end)
        held = lanes.map { _ in nil }
        partitions = PartitionStates(lanes: lanes.count, startWithoutHistory: config.startOffsetWithoutHistory)
        offsetsDB = try PostgresConnection(connectionString: config.postgresURL, logger: logger)
        offsets = OffsetStore(connection: offsetsDB, schema: config.postgresSchema, groupId: config.groupId, owner: options.instanceName)
        var consumerConfig = config.kafkaConfig
        consumerConfig["group.id"] = config.groupId
        consumerConfig["client.id"] = consumerConfig["client.id"] ?? "cloudwaste-stream"
        // The data topics' headers are never read: not parsing them saves two allocations a record.
        consumer = try KafkaConsumer(config: consumerConfig, logger: logger, readsHeaders: false)
        let makeAnonymizer = { [metrics] in
            let anonymizer = Anonymizer(key: key, regions: regions)
            anonymizer.onUnknownRegion = { metrics.unknownRegions(provider: $0.rawValue).increment() }
            return anonymizer
        }
        var limits = RecordDecoder.Limits()
        limits.maxPayloadBytes = config.maxPayloadBytes
        limits.maxFutureSkewSeconds = Int64(config.maxFutureSkewHours) * 3600
        var topicNames: [String: InputTopic] = [:]
        for t in InputTopic.allCases { topicNames[config.topicName(t)] = t }
        preparation = ParallelPreparation(workers: UsableCPUs.count) {
            RecordPreparer(decoder: RecordDecoder(limits: limits), anonymizer: makeAnonymizer(), topicNames: topicNames)
        }
        // A message the preparation skipped is prepared by its builder, on this thread, with a
        // preparer of the builders' own.
        let builderPreparer = RecordPreparer(decoder: RecordDecoder(limits: limits), anonymizer: makeAnonymizer(), topicNames: topicNames)
        builders = lanes.map { _ in BatchBuilder(preparer: builderPreparer, consumerGroup: config.groupId) }
        consumer.setRebalanceListener(self)
        try consumer.subscribe(topics: options.topics.map(config.topicName))
    }

    /// The writer lane of a partition: stable for the life of the process. Asked per message;
    /// messages come in runs of one topic, so the topic's hash is kept from the last one.
    func lane(of tp: TopicPartition) -> Int {
        if let last = lastTopicHash, last.topic == tp.topic { return Self.lane(topicHash: last.hash, partition: tp.partition, lanes: lanes.count) }
        let hash = stableHash(tp.topic)
        lastTopicHash = (tp.topic, hash)
        return Self.lane(topicHash: hash, partition: tp.partition, lanes: lanes.count)
    }

    static func lane(of tp: TopicPartition, lanes: Int) -> Int {
        lane(topicHash: stableHash(tp.topic), partition: tp.partition, lanes: lanes)
    }

    private static func lane(topicHash: UInt64, partition: Int32, lanes: Int) -> Int {
        Int((topicHash &+ UInt64(UInt32(bitPattern: partition))) % UInt64(max(1, lanes)))
    }

    // MARK: - The loop

    func run() {
        var lastHousekeeping = Date.distantPast
        var lastCatchUpCheck = Date.distantPast
        var commitsAtCatchUpCheck = 0
        while !state.isStopping {
            handleFenced()
            claimPending()
            releaseHeldBatches()
            let anyOpen = builders.contains { $0.count > 0 }
            // While data partitions wait for the privacy catch-up, a writer's commit may end the
            // wait: the loop comes round every 10 ms to see it (for at most the bounded wait).
            let holding = partitions.heldForPrivacy > 0
            let messages: [KafkaMessage]
            let polled = ContinuousClock.now
            do {
                messages = try consumer.poll(maxMessages: 2000, maxBytes: 4 << 20, timeoutMs: anyOpen ? 5 : holding ? 10 : 100)
            } catch {
                state.fail("Kafka consumer failed: \(error)")
                break
            }
            let started = ContinuousClock.now
            if firstRecordAt != nil && (anyOpen || !messages.isEmpty) { pollTime += started - polled }
            let waitedBefore = waitTime
            preparation.forEach(messages, wanted: { partitions.isReading($0.topicPartition) }) {
                add($0, prepared: $1, rows: $2)
            }
            decodeTime += (ContinuousClock.now - started) - (waitTime - waitedBefore)
            partitions.pollHandled()
            if !messages.isEmpty { lastRecordAt = Date() }
            sealReadyBatches()
            // Periodically (another instance may apply the privacy partitions it owns), and
            // whenever one of this process's writers committed a batch (their statuses count them).
            let commits = holding ? lanes.reduce(0) { $0 + $1.status.batchesCommitted } : commitsAtCatchUpCheck
            if Date().timeIntervalSince(lastCatchUpCheck) >= 0.1 || commits != commitsAtCatchUpCheck {
                commitsAtCatchUpCheck = commits
                checkPrivacyCatchUp()
                lastCatchUpCheck = Date()
            }
            if Date().timeIntervalSince(lastHousekeeping) >= 1 {
                housekeeping()
                lastHousekeeping = Date()
            }
            if let idle = options.untilIdleSeconds {
                if let reason = noAssignmentFailure() ?? unreachableFailure() {
                    state.fail(reason)
                    break
                }
                if isIdle(for: idle) {
                    logger.info("caught up and idle for \(idle) s: stopping (--until-idle)")
                    break
                }
            }
        }
        stop()
    }

    /// Hands over what is open, waits (bounded) for the writers, then leaves the group.
    private func stop() {
        for i in lanes.indices { seal(i, force: true) }
        reportConsumed()
        let drainDeadline = Date(timeIntervalSinceNow: min(60, state.secondsLeft(margin: .seconds(7))))
        for lane in lanes { _ = lane.queue.waitUntilDrained(timeout: max(0, drainDeadline.timeIntervalSinceNow)) }
        commitKafkaOffsets()
        let fetcherWakes = consumer.fetcherWakes
        if fetcherWakes > 0 {
            logger.info("woke librdkafka's fetchers \(fetcherWakes) times while reading a backlog (librdkafka before 2.3.0)")
        }
        consumer.close(timeoutMs: Int(min(10, max(1, state.secondsLeft(margin: .seconds(3)))) * 1000))
        commitKafkaOffsets()
        offsetsDB.close()
    }

    /// Adds a message to its lane's open batch, unless it is not ours to add now (`PartitionStates`
    /// decides). `prepared` is its record if prepared, with its rows in `rows`.
    private func add(_ m: KafkaMessage, prepared: PreparedRecord?, rows: PreparedRows) {
        let tp = m.topicPartition
        switch partitions.message(tp, offset: m.offset) {
        case .skip:
            return
        case .reread(let offset):
            logger.info("offset gap on \(tp): got \(m.offset), re-reading from \(offset)")
            try? consumer.seek(tp, to: offset)
        case .add(let generation, let expected):
            let i = lane(of: tp)
            let builder = builders[i]
            if firstRecordAt == nil { firstRecordAt = Date() }
            if let prepared {
                builder.add(m, prepared: prepared, rows: rows, generation: generation, expected: expected)
            } else {
                builder.add(m, generation: generation, expected: expected)
            }
            consumedSinceReport += 1
            recordsIn(m.topic).increment()
            if held[i] == nil && policy.isFull(records: builder.count, rows: builder.rows, bytes: builder.bytes) {
                seal(i, force: false)
            }
        }
    }

    private func recordsIn(_ topic: String) -> Counter {
        if let last = lastRecordsIn, last.topic == topic { return last.counter }
        let counter = recordsInCounters[topic] ?? metrics.recordsIn(topic: topic)
        recordsInCounters[topic] = counter
        lastRecordsIn = (topic, counter)
        return counter
    }

    /// Adaptive hand-over: a lane's batch goes when it is full, or when its writer is idle and the
    /// batch has lingered long enough for a burst to gather.
    private func sealReadyBatches() {
        let now = ContinuousClock.now
        for (i, builder) in builders.enumerated() where builder.count > 0 && held[i] == nil {
            let age = builder.openedAt.map { (now - $0).seconds } ?? 0
            if policy.shouldSeal(records: builder.count, rows: builder.rows, bytes: builder.bytes, ageSeconds: age,
                                 writerIdle: lanes[i].queue.isDrained) {
                seal(i, force: false)
            }
        }
    }

    /// Seals lane `i`'s open batch and queues it. `force` queues beyond capacity (revocation,
    /// shutdown). Otherwise waits for room; a writer stuck for longer gets its lane paused.
    private func seal(_ i: Int, force: Bool) {
        if force, let batch = held[i] {
            lanes[i].queue.put(batch)
            held[i] = nil
            execute(partitions.laneHasRoom(i))
        }
        let builder = builders[i]
        guard builder.count > 0 else { return }
        let batch = builder.seal()
        if force || lanes[i].queue.hasRoom {
            lanes[i].queue.put(batch)
            return
        }
        let waitStarted = ContinuousClock.now
        let room = lanes[i].queue.waitForRoom(timeout: 2)
        waitTime += ContinuousClock.now - waitStarted
        if room {
            lanes[i].queue.put(batch)
            return
        }
        held[i] = batch
        execute(partitions.laneStuck(i))
        logger.info("writer \(i) is stuck; pausing its partitions until it has room")
    }

    /// Queues held batches whose writer has room again and resumes their partitions.
    private func releaseHeldBatches() {
        for i in lanes.indices where held[i] != nil && lanes[i].queue.hasRoom {
            lanes[i].queue.put(held[i]!)
            held[i] = nil
            execute(partitions.laneHasRoom(i))
        }
    }

    /// Releases the held data partitions once the privacy requests before their assignment are applied.
    private func checkPrivacyCatchUp() {
        let held = partitions.heldForPrivacy
        guard held > 0, let waited = privacyCatchUp.check(held: held, consumer: consumer, offsets: offsets, logger: logger) else { return }
        catchUpSeconds += waited
        execute(partitions.privacyCaughtUp())
    }

    /// Carries out what `PartitionStates` decided. A seek that must wait and fails throws (the
    /// caller retries the claim).
    private func execute(_ actions: [PartitionStates.Action]) {
        do {
            try executeThrowing(actions)
        } catch {
            guard FailureHandling.shouldRetry(error, "cannot seek", state: state) else { return }
            logger.warning("seek failed; will retry", metadata: ["error": "\(error)"])
        }
    }

    private func executeThrowing(_ actions: [PartitionStates.Action]) throws {
        for action in actions {
            switch action {
            case .pause(let tps): consumer.pause(Array(tps))
            case .resume(let tps): consumer.resume(Array(tps))
            case .seek(let positions, let wait): try consumer.seek(positions, timeoutMs: wait ? 5000 : 0)
            case .discard(let tps): for builder in builders { builder.discard(tps) }
            }
        }
    }

    // MARK: - Ownership

    private func handleFenced() {
        let fenced = state.takeFenced()
        if !fenced.isEmpty { execute(partitions.fenced(fenced)) }
    }

    /// Claims partitions whose claim failed or was fenced, then seeks them to PostgreSQL's offset.
    private func claimPending() {
        guard partitions.anyToClaim else { return }
        let pending = partitions.partitionsToClaim
        do {
            let claims = try offsets.claim(pending)
            noteClaims(claims)
            do {
                try executeThrowing(partitions.claimed(claims))
            } catch {
                partitions.unclaim(Set(claims.keys))
                throw error
            }
            logger.info("re-claimed \(claims.count) partitions")
            logger.debug("re-claimed partitions", metadata: ["partitions": "\(claims.keys.sorted().map(\.description).joined(separator: ","))"])
        } catch {
            guard FailureHandling.shouldRetry(error, "cannot claim partitions", state: state) else { return }
            logger.warning("cannot claim partitions yet; retrying", metadata: ["error": "\(error)"])
            try? offsets.reconnect()
            state.sleep(0.5)
        }
    }

    func partitionsAssigned(_ assigned: [TopicPartition]) -> (offsets: [TopicPartition: Int64], paused: Set<TopicPartition>) {
        everAssigned = true
        let heldBack = privacyCatchUp.hold(assigned, waiting: partitions.heldForPrivacy > 0)
        if !heldBack.isEmpty {
            logger.info("holding \(heldBack.count) data partitions until the privacy requests published before this assignment are applied")
        }
        do {
            let claims = try offsets.claim(assigned)
            noteClaims(claims)
            state.consumerStatus.withLock { $0.kafkaJoined = true }
            return partitions.assigned(assigned, claims: claims, privacyHeld: heldBack)
        } catch {
            if !FailureHandling.shouldRetry(error, "cannot claim assigned partitions", state: state) {
                return partitions.assigned(assigned, claims: nil, privacyHeld: heldBack)
            }
            logger.warning("cannot claim assigned partitions in PostgreSQL; they stay paused until it answers", metadata: ["error": "\(error)"])
            try? offsets.reconnect()
            return partitions.assigned(assigned, claims: nil, privacyHeld: heldBack)
        }
    }

    func partitionsRevoked(_ revokedList: [TopicPartition], lost: Bool) {
        let revoked = Set(revokedList)
        let affected = Set(revoked.map(lane(of:)))
        if !lost {
            // Commit what was read from these partitions before they move (bounded: a late commit
            // is still safe, because the new owner's claim fences it). Lost: another member owns
            // them already, and whatever is uncommitted will be fenced anyway.
            for i in affected { seal(i, force: true) }
            let wait = min(30, state.secondsLeft(margin: .seconds(7)))
            for i in affected where !lanes[i].queue.waitUntilDrained(timeout: wait) {
                logger.warning("revocation: writer \(i) did not drain within \(Int(wait)) s; its batch will be fenced if the new owner claimed first")
            }
        }
        partitions.revoked(revoked)
        for tp in revoked { committedNext[tp] = nil }
        for builder in builders { builder.discard(revoked) }
    }

    // MARK: - Housekeeping (once a second)

    private func housekeeping() {
        let clientErrors = consumer.clientErrors
        if clientErrors > clientErrorsCounted {
            metrics.kafkaClientErrors.increment(by: clientErrors - clientErrorsCounted)
            clientErrorsCounted = clientErrors
            lastClientErrorAt = Date()
        }
        let fetcherWakes = consumer.fetcherWakes
        if fetcherWakes > fetcherWakesCounted {
            metrics.kafkaFetcherWakes.increment(by: fetcherWakes - fetcherWakesCounted)
            fetcherWakesCounted = fetcherWakes
        }
        reportConsumed()
        commitKafkaOffsets()
        restartStalledPartitions(lag: updateLag())
    }

    private func reportConsumed() {
        let decoded = decodeTime.seconds
        let waited = waitTime.seconds
        let polling = pollTime.seconds
        let catchingUp = catchUpSeconds
        catchUpSeconds = 0
        let consumed = consumedSinceReport
        decodeTime = .zero
        waitTime = .zero
        pollTime = .zero
        consumedSinceReport = 0
        let first = firstRecordAt
        state.consumerStatus.withLock {
            $0.stageSeconds["decode_anonymize_encode", default: 0] += decoded
            $0.stageSeconds["wait_for_writer", default: 0] += waited
            $0.stageSeconds["wait_for_kafka", default: 0] += polling
            if catchingUp > 0 { $0.stageSeconds["wait_for_privacy_catch_up", default: 0] += catchingUp }
            $0.recordsConsumed += consumed
            if $0.firstRecordAt == nil { $0.firstRecordAt = first }
        }
    }

    /// Commits PostgreSQL's committed positions to Kafka too, so lag tools see progress.
    private func commitKafkaOffsets() {
        let committed = state.takeCommittedOffsets().filter { partitions.owns($0.key) }
        for (tp, next) in committed where next > committedNext[tp] ?? -1 { committedNext[tp] = next }
        if !committed.isEmpty { consumer.commit(committed) }
    }

    /// Where PostgreSQL stands for newly claimed partitions.
    private func noteClaims(_ claims: [TopicPartition: OffsetStore.Claim]) {
        for (tp, claim) in claims { committedNext[tp] = claim.nextOffset.offset }
    }

    /// Per owned partition where librdkafka knows the watermarks: records not yet committed in
    /// PostgreSQL (the lag operators see: `/stats`, the metric, the alerts), and records not yet
    /// fetched (returned, for the stall watchdog).
    private func updateLag() -> [TopicPartition: Int64] {
        var lag: [TopicPartition: Int64] = [:]
        var unfetched: [TopicPartition: Int64] = [:]
        let startsAtEnd = config.startOffsetWithoutHistory == KafkaOffset.end
        for (tp, next) in partitions.owned {
            guard let (low, high) = consumer.cachedWatermarks(tp) else { continue }
            unfetched[tp] = max(0, high - next.offsetOrZero)
            let l = max(0, high - (committedNext[tp] ?? (startsAtEnd ? high : low)))
            lag[tp] = l
            metrics.partitionLag(topic: tp.topic, partition: tp.partition).set(Double(l))
        }
        let assigned = consumer.assignment.count
        let reachable = consumer.brokersReachable()
        unreachableSince = reachable ? nil : unreachableSince ?? Date()
        let diagnosis = assigned == 0 || !reachable ? consumer.diagnosis : nil
        state.consumerStatus.withLock {
            $0.lag = lag
            $0.assignedPartitions = assigned
            $0.kafkaJoined = $0.kafkaJoined || assigned > 0
            $0.kafkaReachable = reachable
            $0.kafkaDiagnosis = diagnosis
        }
        let status = state.status(writers: lanes.map(\.status))
        metrics.ready.set(status.ready ? 1 : 0)
        metrics.postgresUp.set(status.postgresHealthy ? 1 : 0)
        metrics.kafkaUp.set(reachable ? 1 : 0)
        metrics.assignedPartitions.set(Double(assigned))
        if let rss = ProcessMemory.residentBytes { metrics.residentMemory.set(Double(rss)) }
        return unfetched
    }

    /// Partitions with records to read that delivered none for `partitionStallSeconds` are
    /// re-sought to where this loop stands and resumed (`PartitionStates.stalled`). Nothing is
    /// lost by re-seeking: positions come from our own state.
    private func restartStalledPartitions(lag: [TopicPartition: Int64]) {
        let restart = partitions.stalled(now: Date().timeIntervalSinceReferenceDate, lag: lag,
                                         laneHasRoom: { self.lanes[$0].queue.hasRoom }, stallSeconds: config.partitionStallSeconds)
        guard !restart.isEmpty else { return }
        let positions = consumer.positions(Array(restart.keys))
        logger.warning("partitions with records to read delivered none; re-seeking them", metadata: [
            "partitions": "\(restart.keys.sorted().map { "\($0)@\(restart[$0]!) (librdkafka position \(positions[$0].map(String.init) ?? "none"))" }.joined(separator: ", "))",
            "stall_seconds": "\(config.partitionStallSeconds)",
        ])
        metrics.partitionRestarts.increment(by: restart.count)
        execute([.resume(Set(restart.keys)), .seek(restart, wait: false)])
    }

    // MARK: - --until-idle

    /// A bounded wait for the first assignment (SPEC §10): nil while still within it.
    private func noAssignmentFailure() -> String? {
        guard !everAssigned, Date().timeIntervalSince(startedAt) >= config.assignmentTimeoutSeconds else { return nil }
        return "no partitions were assigned within \(Int(config.assignmentTimeoutSeconds)) s: \(consumer.diagnosis ?? "check the bootstrap servers, the topic names and the credentials")"
    }

    /// A batch run (`--until-idle`) does not wait for a broker forever: unreachable for longer
    /// than the assignment timeout (at least a minute), it fails (exit 1) saying so.
    private func unreachableFailure() -> String? {
        let limit = max(60, config.assignmentTimeoutSeconds)
        guard let since = unreachableSince, Date().timeIntervalSince(since) >= limit else { return nil }
        return "no Kafka broker answered for \(Int(limit)) s: \(consumer.diagnosis ?? "check the bootstrap servers and the network")"
    }

    private func isIdle(for seconds: Double) -> Bool {
        // Unreachable brokers may hold records this instance has not seen: not caught up.
        guard unreachableSince == nil, Date().timeIntervalSince(lastRecordAt) >= seconds, builders.allSatisfy({ $0.count == 0 }),
              held.allSatisfy({ $0 == nil }), lanes.allSatisfy({ $0.queue.isDrained }) else { return false }
        let assignment = consumer.assignment
        if assignment.isEmpty {
            // A group with more members than partitions leaves this one without any: idle after a
            // while. Not while Kafka reports errors, though: a broker outage also empties the
            // assignment (the session is lost), and the backlog is still there.
            let quiet = max(seconds, 30)
            return everAssigned && Date().timeIntervalSince(startedAt) >= quiet && Date().timeIntervalSince(lastClientErrorAt) >= quiet
        }
        guard !partitions.anyToClaim else { return false }
        let owned = partitions.owned
        for tp in assignment {
            guard let next = owned[tp] else { return false }
            guard let (_, high) = consumer.cachedWatermarks(tp) else { return false }
            if next.offsetOrZero < high { return false }
        }
        return true
    }
}
