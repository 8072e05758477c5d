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
    private struct Owned {
        var generation: Int64
        /// Next offset to add (-1: none committed yet, start where librdkafka starts).
        var expected: Int64
    }

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

    private var owned: [TopicPartition: Owned] = [:]
    private var needsClaim = Set<TopicPartition>()
    private var gapChecked: [TopicPartition: Int64] = [:]
    /// Partitions re-seeked while handling the current poll: its remaining messages are stale.
    private var reseeked = Set<TopicPartition>()
    /// A sealed batch per lane that its stuck writer has no room for yet (its partitions are paused).
    private var held: [PreparedBatch?]
    private var decodeTime = Duration.zero
    /// Time this thread waited for room behind a busy writer (back-pressure, not work).
    private var waitTime = Duration.zero
    private var consumedSinceReport = 0
    private var recordsInCounters: [String: Counter] = [:]
    private var lastRecordAt = Date()
    private var firstRecordAt: Date?
    private var everAssigned = false
    private let startedAt = Date()
    /// Stall watchdog: where each lagging partition stood at the last check, and since when.
    private var stalled: [TopicPartition: (expected: Int64, since: Date)] = [:]
    /// Data partitions held back until the privacy requests published before their assignment are applied.
    private var privacyCatchUp: PrivacyCatchUp
    /// Where a held partition without committed history is to be read again: messages fetched
    /// before its pause took effect are skipped until it is released.
    private var readAgainFrom: [TopicPartition: Int64] = [:]

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
        offsetsDB = try PostgresConnection(connectionString: config.postgresURL, logger: logger)
        offsets = OffsetStore(connection: offsetsDB, schema: config.postgresSchema, groupId: config.groupId, owner: options.instanceName)
        var consumerConfig = config.kafkaConfig
        consumerConfig["group.id"] = config.groupId
        consumerConfig["client.id"] = consumerConfig["client.id"] ?? "cloudwaste-stream"
        consumer = try KafkaConsumer(config: consumerConfig, logger: logger)
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
        let preparers = (0..<UsableCPUs.count).map { _ in
            RecordPreparer(decoder: RecordDecoder(limits: limits), anonymizer: makeAnonymizer(), topicNames: topicNames)
        }
        preparation = ParallelPreparation(preparers: preparers)
        // A message the preparation skipped is prepared by its builder, on this thread, with the
        // first preparer: the workers use it only while a group is prepared, never at the same time.
        builders = lanes.map { _ in BatchBuilder(preparer: preparers[0], consumerGroup: config.groupId) }
        consumer.setRebalanceListener(self)
        try consumer.subscribe(topics: options.topics.map(config.topicName))
    }

    /// The writer lane of a partition: stable for the life of the process.
    func lane(of tp: TopicPartition) -> Int { Self.lane(of: tp, lanes: lanes.count) }

    static func lane(of tp: TopicPartition, lanes: Int) -> Int {
        Int((stableHash(tp.topic) &+ UInt64(UInt32(bitPattern: tp.partition))) % UInt64(max(1, lanes)))
    }

    // MARK: - The loop

    func run() {
        var lastHousekeeping = Date.distantPast
        var lastCatchUpCheck = Date.distantPast
        while !state.isStopping {
            handleFenced()
            if !needsClaim.isEmpty { claimPending() }
            releaseHeldBatches()
            let anyOpen = builders.contains { $0.count > 0 }
            let messages: [KafkaMessage]
            do {
                messages = try consumer.poll(maxMessages: 2000, maxBytes: 4 << 20, timeoutMs: anyOpen ? 5 : 100)
            } catch {
                state.fail("Kafka consumer failed: \(error)")
                break
            }
            let started = ContinuousClock.now
            let waitedBefore = waitTime
            preparation.forEach(messages, wanted: { owned[$0.topicPartition] != nil && !privacyCatchUp.holds($0.topicPartition) }) {
                add($0, prepared: $1)
            }
            decodeTime += (ContinuousClock.now - started) - (waitTime - waitedBefore)
            reseeked.removeAll()
            if !messages.isEmpty { lastRecordAt = Date() }
            sealReadyBatches()
            if !privacyCatchUp.held.isEmpty && Date().timeIntervalSince(lastCatchUpCheck) >= 0.1 {
                checkPrivacyCatchUp()
                lastCatchUpCheck = Date()
            }
            if Date().timeIntervalSince(lastHousekeeping) >= 1 {
                housekeeping()
                lastHousekeeping = Date()
            }
            if let idle = options.untilIdleSeconds {
                if let reason = noAssignmentFailure() {
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
        consumer.close(timeoutMs: Int(min(10, max(1, state.secondsLeft(margin: .seconds(3)))) * 1000))
        commitKafkaOffsets()
        offsetsDB.close()
    }

    /// Adds a message to its lane's open batch, unless it is not ours to add now (not owned, held,
    /// fetched before a seek, or after a gap it re-reads). `prepared` is its record if prepared.
    private func add(_ m: KafkaMessage, prepared: PreparedRecord?) {
        let tp = m.topicPartition
        guard var own = owned[tp] else { return }  // not ours (yet): it will be re-read after the claim
        if reseeked.contains(tp) { return }  // the rest of this poll for a partition just re-seeked
        if privacyCatchUp.holds(tp) {
            if own.expected < 0 && readAgainFrom[tp] == nil { readAgainFrom[tp] = m.offset }
            return
        }
        if own.expected >= 0 && m.offset < own.expected { return }  // fetched before a seek
        if own.expected >= 0 && m.offset > own.expected && gapChecked[tp] != own.expected {
            // Never skip silently: re-read from where we stand once. If the same gap comes back it
            // is real (compaction, transaction markers, retention) and is accepted.
            gapChecked[tp] = own.expected
            logger.info("offset gap on \(tp): expected \(own.expected), got \(m.offset); re-reading")
            try? consumer.seek(tp, to: own.expected)
            reseeked.insert(tp)
            return
        }
        let i = lane(of: tp)
        let builder = builders[i]
        if firstRecordAt == nil { firstRecordAt = Date() }
        if let prepared {
            builder.add(m, prepared: prepared, generation: own.generation, expectedOffset: own.expected)
        } else {
            builder.add(m, generation: own.generation, expectedOffset: own.expected)
        }
        own.expected = m.offset + 1
        owned[tp] = own
        consumedSinceReport += 1
        recordsIn(m.topic).increment()
        if held[i] == nil && policy.isFull(records: builder.count, rows: builder.rows, bytes: builder.bytes) {
            seal(i, force: false)
        }
    }

    private func recordsIn(_ topic: String) -> Counter {
        if let counter = recordsInCounters[topic] { return counter }
        let counter = metrics.recordsIn(topic: topic)
        recordsInCounters[topic] = counter
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
            resume(lane: i)
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
        let paused = owned.keys.filter { lane(of: $0) == i }
        consumer.pause(paused)
        logger.info("writer \(i) is stuck; pausing its \(paused.count) partitions until it has room")
    }

    /// Queues held batches whose writer has room again and resumes their partitions.
    private func releaseHeldBatches() {
        for i in lanes.indices where held[i] != nil && lanes[i].queue.hasRoom {
            lanes[i].queue.put(held[i]!)
            held[i] = nil
            resume(lane: i)
        }
    }

    private func resume(lane i: Int) {
        resume(Set(owned.keys.filter { lane(of: $0) == i }))
    }

    /// Whether a partition may be read now: not waiting for a claim, for the privacy catch-up, or
    /// for room behind its writer.
    private func mayRead(_ tp: TopicPartition) -> Bool {
        !needsClaim.contains(tp) && !privacyCatchUp.holds(tp) && held[lane(of: tp)] == nil
    }

    /// Resumes those of `partitions` that may be read, at exactly where this loop stands
    /// (librdkafka 2.0 may resume elsewhere; `add` skips or re-reads anything that does not line up).
    private func resume(_ partitions: Set<TopicPartition>) {
        let mine = owned.filter { partitions.contains($0.key) && mayRead($0.key) }
        guard !mine.isEmpty else { return }
        consumer.resume(Array(mine.keys))
        var positions: [TopicPartition: Int64] = [:]
        for (tp, own) in mine {
            if own.expected >= 0 { positions[tp] = own.expected } else if let first = readAgainFrom[tp] { positions[tp] = first }
            readAgainFrom[tp] = nil
        }
        guard !positions.isEmpty else { return }
        do { try consumer.seek(positions, timeoutMs: 0) } catch { logger.warning("seek after resume failed", metadata: ["error": "\(error)"]) }
    }

    /// Releases the held data partitions once the privacy requests before their assignment are applied.
    private func checkPrivacyCatchUp() {
        let released = privacyCatchUp.check(consumer: consumer, offsets: offsets, logger: logger)
        if !released.isEmpty { resume(released) }
    }

    // MARK: - Ownership

    private func handleFenced() {
        let fenced = state.takeFenced().filter { owned[$0.key]?.generation == $0.value }
        guard !fenced.isEmpty else { return }
        let partitions = Set(fenced.keys)
        for builder in builders { builder.discard(partitions) }
        for tp in partitions { owned[tp] = nil }
        needsClaim.formUnion(partitions.filter { consumer.assignment.contains($0) })
        consumer.pause(Array(partitions))
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
            consumer.resume(claims.keys.filter(mayRead))
            logger.info("re-claimed \(claims.count) partitions")
            logger.debug("re-claimed partitions", metadata: ["partitions": "\(claims.keys.sorted().map(\.description).joined(separator: ","))"])
        } catch {
            logger.warning("cannot claim partitions yet; retrying", metadata: ["error": "\(error)"])
            try? offsets.reconnect()
            state.sleep(0.5)
        }
    }

    func partitionsAssigned(_ partitions: [TopicPartition]) -> (offsets: [TopicPartition: Int64], paused: Set<TopicPartition>) {
        everAssigned = true
        let heldBack = privacyCatchUp.hold(partitions)
        if !heldBack.isEmpty {
            logger.info("holding \(heldBack.count) data partitions until the privacy requests published before this assignment are applied")
        }
        do {
            let claims = try offsets.claim(partitions)
            var out: [TopicPartition: Int64] = [:]
            for (tp, claim) in claims {
                owned[tp] = Owned(generation: claim.generation, expected: claim.nextOffset ?? -1)
                out[tp] = claim.nextOffset ?? config.startOffsetWithoutHistory
            }
            state.status.withLock { $0.kafkaJoined = true }
            let paused = Set(partitions.filter { held[lane(of: $0)] != nil }).union(heldBack)
            return (out, paused)
        } catch {
            logger.warning("cannot claim assigned partitions in PostgreSQL; they stay paused until it answers", metadata: ["error": "\(error)"])
            try? offsets.reconnect()
            needsClaim.formUnion(partitions)
            return ([:], Set(partitions))
        }
    }

    func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) {
        let revoked = Set(partitions)
        let affected = Set(revoked.map(lane(of:)))
        if lost {
            // Another member owns them already: whatever is uncommitted will be fenced anyway.
            for builder in builders { builder.discard(revoked) }
        } else {
            // Commit what was read from these partitions before they move (bounded: a late commit
            // is still safe, because the new owner's claim fences it).
            for i in affected { seal(i, force: true) }
            let wait = min(30, state.secondsLeft(margin: .seconds(7)))
            for i in affected where !lanes[i].queue.waitUntilDrained(timeout: wait) {
                logger.warning("revocation: writer \(i) did not drain within \(Int(wait)) s; its batch will be fenced if the new owner claimed first")
            }
        }
        for tp in partitions {
            owned[tp] = nil
            needsClaim.remove(tp)
            gapChecked[tp] = nil
            stalled[tp] = nil
            readAgainFrom[tp] = nil
        }
        for builder in builders { builder.discard(revoked) }
        privacyCatchUp.forget(revoked)
    }

    // MARK: - Housekeeping (once a second)

    private func housekeeping() {
        reportConsumed()
        commitKafkaOffsets()
        restartStalledPartitions(lag: updateLag())
    }

    private func reportConsumed() {
        let decoded = decodeTime.seconds
        let waited = waitTime.seconds
        let consumed = consumedSinceReport
        decodeTime = .zero
        waitTime = .zero
        consumedSinceReport = 0
        let first = firstRecordAt
        state.status.withLock {
            $0.stageSeconds["decode_anonymize_encode", default: 0] += decoded
            $0.stageSeconds["wait_for_writer", default: 0] += waited
            $0.recordsConsumed += consumed
            if $0.firstRecordAt == nil { $0.firstRecordAt = first }
        }
    }

    /// Commits PostgreSQL's committed positions to Kafka too, so lag tools see progress.
    private func commitKafkaOffsets() {
        let committed = state.takeCommittedOffsets().filter { owned[$0.key] != nil }
        if !committed.isEmpty { consumer.commit(committed) }
    }

    /// Records left per owned partition, where librdkafka knows the high watermark.
    private func updateLag() -> [TopicPartition: Int64] {
        var lag: [TopicPartition: Int64] = [:]
        for (tp, own) in owned {
            if let (_, high) = consumer.cachedWatermarks(tp) {
                let l = max(0, high - max(own.expected, 0))
                lag[tp] = l
                metrics.partitionLag(topic: tp.topic, partition: tp.partition).set(Double(l))
            }
        }
        let assigned = consumer.assignment.count
        let writers = lanes.map(\.status)
        let diagnosis = assigned == 0 ? consumer.diagnosis : nil
        let ready = state.status.withLock {
            $0.lag = lag
            $0.assignedPartitions = assigned
            $0.kafkaJoined = $0.kafkaJoined || assigned > 0
            $0.writers = writers
            $0.kafkaDiagnosis = diagnosis
            $0.postgresDiagnosis = writers.compactMap(\.lastError).first
            return $0.ready
        }
        metrics.ready.set(ready ? 1 : 0)
        metrics.assignedPartitions.set(Double(assigned))
        if let rss = ProcessMemory.residentBytes { metrics.residentMemory.set(Double(rss)) }
        return lag
    }

    /// A partition that has records to read (or was never fetched) but delivered none for
    /// `partitionStallSeconds` is re-seeked to where we stand and resumed. librdkafka 2.0 can
    /// leave a partition idle after a lost session (brokers down longer than session.timeout.ms,
    /// then a rejoin); nothing is lost by re-seeking, because positions come from our own state.
    private func restartStalledPartitions(lag: [TopicPartition: Int64]) {
        let now = Date()
        var restart: [TopicPartition: Int64] = [:]
        for (tp, own) in owned {
            // Started at the end on purpose (auto.offset.reset=latest) and nothing new yet.
            if own.expected < 0 && config.startOffsetWithoutHistory == KafkaOffset.end { continue }
            // No lag figure means librdkafka has no watermarks: it has not fetched the partition
            // at all since it was assigned, which counts as lagging too. A lane that is full or
            // held back is not stalled: it waits for its writer.
            let i = lane(of: tp)
            guard (lag[tp] ?? 1) > 0, held[i] == nil, lanes[i].queue.hasRoom, !privacyCatchUp.holds(tp) else {
                stalled[tp] = nil
                continue
            }
            if let s = stalled[tp], s.expected == own.expected {
                if now.timeIntervalSince(s.since) >= config.partitionStallSeconds {
                    restart[tp] = own.expected >= 0 ? own.expected : config.startOffsetWithoutHistory
                    stalled[tp] = (own.expected, now)
                }
            } else {
                stalled[tp] = (own.expected, now)
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

    // MARK: - --until-idle

    /// A bounded wait for the first assignment (SPEC §10): nil while still within it.
    private func noAssignmentFailure() -> String? {
        guard !everAssigned, Date().timeIntervalSince(startedAt) >= config.assignmentTimeoutSeconds else { return nil }
        return "no partitions were assigned within \(Int(config.assignmentTimeoutSeconds)) s: \(consumer.diagnosis ?? "check the bootstrap servers, the topic names and the credentials")"
    }

    private func isIdle(for seconds: Double) -> Bool {
        guard Date().timeIntervalSince(lastRecordAt) >= seconds, builders.allSatisfy({ $0.count == 0 }),
              held.allSatisfy({ $0 == nil }), lanes.allSatisfy({ $0.queue.isDrained }) else { return false }
        let assignment = consumer.assignment
        if assignment.isEmpty { return everAssigned && Date().timeIntervalSince(startedAt) >= max(seconds, 30) }
        guard needsClaim.isEmpty else { return false }
        for tp in assignment {
            guard let own = owned[tp] else { return false }
            guard let (_, high) = consumer.cachedWatermarks(tp) else { return false }
            if max(own.expected, 0) < high { return false }
        }
        return true
    }
}
