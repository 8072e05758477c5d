import CoreMetrics
import CloudWasteKafka
import CloudWastePostgres
import Foundation
import Logging

/// The output thread: everything that happens after a commit. It publishes dead letters, is the
/// pipeline's recomputer of cost-trend windows (`CostTrendWindows`, paced by `DutyCyclePacing`:
/// at most once per `windows.recompute_interval_ms` and never more than a tenth of the time, at
/// once after a privacy correction, and every 5 s to finalize months), and publishes the changed
/// cost-trend rows. Its own PostgreSQL connection and the pipeline's only producer; created on,
/// and owned by, its thread.
final class OutputWorker {
    private let config: StreamConfig
    private let keyId: String
    private let state: PipelineState
    private let inbox: OutputInbox
    private let metrics: PipelineMetrics
    private let logger: Logger
    private let db: PostgresConnection
    private let producer: KafkaProducer
    private let windows: CostTrendWindows
    private let trends: TrendPublisher
    private let deadLetters: DeadLetterPublisher
    private let startedAt = Date()

    private var unpublished: [DeadLetterPublication] = []
    /// Sent and flushed, not yet recorded as published (PostgreSQL was away): never sent again.
    private var toMark: [SourcePosition] = []
    private var windowsDirty = true  // an earlier run may have left queued months
    private var windowsUrgent = false
    private var trendsPending = true  // and unpublished rows
    private var recoveryPending = true
    /// What failed (Kafka or PostgreSQL away) is retried every few seconds, not every round; each
    /// concern on its own timer.
    private var reconnectRetry = RetryTimer(every: .seconds(5))
    private var recoveryRetry = RetryTimer(every: .seconds(5))
    private var deadLetterRetry = RetryTimer(every: .seconds(5))
    private var trendRetry = RetryTimer(every: .seconds(5))
    private var pacing: DutyCyclePacing
    private var lastWatermarkExport = ContinuousClock.now - .seconds(3600)

    init(config: StreamConfig, keyId: String, state: PipelineState, inbox: OutputInbox, metrics: PipelineMetrics,
         logger: Logger) throws {
        self.config = config
        self.keyId = keyId
        self.state = state
        self.inbox = inbox
        self.metrics = metrics
        self.logger = logger
        db = try PostgresConnection(connectionString: config.postgresURL, logger: logger)
        producer = try KafkaProducer(config: config.kafkaConfig, logger: logger)
        windows = CostTrendWindows(connection: db, settings: CostTrendWindows.Settings(config: config))
        trends = TrendPublisher(producer: producer, windows: windows, topic: config.costTrendTopic)
        deadLetters = DeadLetterPublisher(producer: producer, db: db, config: config, logger: logger)
        // Nothing queued: every 5 s, to finalize months.
        pacing = DutyCyclePacing(busyInterval: .milliseconds(config.windowRecomputeIntervalMs), idleInterval: .seconds(5))
    }

    var interrupter: PostgresInterrupter { db.interrupter }

    func run() {
        // Until the last writer stopped and everything it posted is taken.
        while let work = inbox.take(timeout: 0.1) {
            unpublished += work.deadLetters
            windowsDirty = windowsDirty || work.windowsChanged
            windowsUrgent = windowsUrgent || work.windowsUrgent
            step(final: false)
        }
        finish()
        db.close()
    }

    /// One round: dead letters, then windows when due, then any trend rows left unpublished. The
    /// final round tries everything once more, due or not.
    private func step(final: Bool) {
        let now = ContinuousClock.now
        // Publishing waits for Kafka (a flush takes up to 10 s, a recovery reads topics): at a stop
        // it is tried only while the stop deadline leaves room; what is left goes out at the next start.
        let kafkaHasTime = state.secondsLeft(margin: .seconds(12)) > 0
        if !db.isConnected && (final || reconnectRetry.isDue(at: now)) {
            reconnectRetry.attempted(at: now)
            try? db.reconnect()
        }
        if recoveryPending && kafkaHasTime && (final || recoveryRetry.isDue(at: now)) {
            recoveryRetry.attempted(at: now)
            do {
                let n = try deadLetters.recoverUnpublished(committedBefore: startedAt)
                if n > 0 { logger.info("published \(n) dead letters left unpublished by an earlier run") }
                recoveryPending = false
            } catch {
                deadLettersNotPublished(error)
            }
        }
        if (!unpublished.isEmpty || !toMark.isEmpty) && kafkaHasTime && (final || deadLetterRetry.isDue(at: now)) {
            deadLetterRetry.attempted(at: now)
            do {
                if !unpublished.isEmpty {
                    try deadLetters.recordSendStart(unpublished.map(\.source))
                    try deadLetters.send(unpublished)
                    toMark += unpublished.map(\.source)
                    unpublished.removeAll()
                }
                try deadLetters.markPublished(toMark)
                toMark.removeAll()
                deadLetterRetry.succeeded()
            } catch {
                deadLettersNotPublished(error)
            }
        }
        guard config.windowsEnabled else { return }
        if final || windowsUrgent || pacing.isDue(at: .now, workWaiting: windowsDirty) {
            recompute(wait: final)
        }
        if trendsPending && (final || trendRetry.isDue(at: now)) {
            trendRetry.attempted(at: now)
            republishTrends()
        }
        exportWatermark()
    }

    private func deadLettersNotPublished(_ error: any Error) {
        metrics.kafkaErrors.increment()
        guard FailureHandling.shouldRetry(error, "cannot publish dead letters", state: state) else { return }
        logger.warning("dead letters not published yet; will retry", metadata: ["error": "\(error)", "pending": "\(unpublished.count)"])
        if error is PostgresError { try? db.reconnect() }
    }

    /// The group's event-time watermark as a metric, every 10 s on every instance (whoever
    /// recomputes): the alert for a month that never finalizes watches it.
    private func exportWatermark() {
        guard ContinuousClock.now - lastWatermarkExport >= .seconds(10), db.isConnected else { return }
        lastWatermarkExport = .now
        if let watermark = try? windows.watermark() { metrics.windowWatermark.set(Double(watermark.seconds)) }
    }

    private func finish() {
        logger.debug("output: final round")
        step(final: true)
    }

    /// Recomputes the queued account-months (as the schema's only recomputer) and publishes.
    private func recompute(wait: Bool) {
        let start = ContinuousClock.now
        do {
            let timeout = wait ? Int(max(1, min(10, state.secondsLeft(margin: .seconds(3))))) : 10
            guard let result = try windows.recompute(keyId: keyId, wait: wait, lockTimeoutSeconds: timeout) else {
                // Another session recomputes right now; it takes the queue. Try again later.
                pacing.skipped(at: .now)
                return
            }
            pacing.ran(from: start, to: .now)
            windowsDirty = false
            windowsUrgent = false
            metrics.lateRecords.increment(by: result.lateRecords)
            metrics.windowsFinalized.increment(by: result.finalizedMonths)
            if let watermark = result.watermark {
                metrics.windowWatermark.set(Double(watermark.seconds))
                lastWatermarkExport = .now  // just read: no query of its own for the next 10 s
            }
            state.outputStatus.withLock { $0.windowRecomputes += 1 }
            publish(result.emissions)
        } catch {
            pacing.failed(at: .now)
            guard FailureHandling.shouldRetry(error, "cannot recompute the cost-trend windows", state: state) else { return }
            logger.warning("cost-trend recompute failed; will retry", metadata: ["error": "\(error)"])
            if error is PostgresError { try? db.reconnect() }
        }
    }

    private func republishTrends() {
        do {
            let retired = try trends.retireLegacyKeys(timeoutMs: Int32(max(1, min(10, state.secondsLeft(margin: .seconds(2)))) * 1000))
            if retired > 0 {
                logger.info("published tombstones for \(retired) cost-trend keys from before money per currency (account_hash:month)")
                return  // more may follow; trendsPending stays set
            }
            let pending = try windows.unpublishedTrends()
            if !pending.isEmpty {
                logger.info("re-publishing \(pending.count) cost-trend rows left unpublished")
                publish(pending)
            } else {
                trendsPending = false
            }
        } catch {
            guard FailureHandling.shouldRetry(error, "cannot re-publish cost-trend rows", state: state) else { return }
            logger.debug("cannot read unpublished cost-trend rows yet", metadata: ["error": "\(error)"])
        }
    }

    /// Publishes changed cost-trend rows after their commit. If Kafka is unavailable the rows stay
    /// marked unpublished in PostgreSQL and go out on a later round or at the next start.
    private func publish(_ emissions: [TrendEmission]) {
        guard !emissions.isEmpty else { return }
        do {
            try trends.publish(emissions, timeoutMs: Int32(max(1, min(10, state.secondsLeft(margin: .seconds(2)))) * 1000))
            metrics.trendsEmitted.increment(by: emissions.count)
        } catch {
            trendsPending = true
            guard FailureHandling.shouldRetry(error, "cannot publish cost-trend rows", state: state) else { return }
            logger.warning("cost-trend rows not published yet; will retry", metadata: ["error": "\(error)"])
        }
    }
}
