import CoreMetrics
import CloudWasteKafka
import CloudWastePostgres
import Foundation
import Logging

/// One writer thread: takes its lane's batches and writes each in one PostgreSQL transaction on
/// its own connection (two when it carries privacy requests and other records: the requests
/// commit first, `PreparedBatch.transactions`). Infrastructure failures are retried with
/// capped exponential back-off and jitter; a row PostgreSQL rejects is found by bisection and
/// dead-lettered; fenced partitions are reported to the consumer loop. After each commit, the dead
/// letters and the window change go to the output thread. Created on, and owned by, its thread.
final class PartitionWriter {
    let lane: WriterLane
    private let writer: BatchWriter
    private let config: StreamConfig
    private let state: PipelineState
    private let metrics: PipelineMetrics
    private let output: OutputInbox
    private let logger: Logger

    init(lane: WriterLane, config: StreamConfig, state: PipelineState, metrics: PipelineMetrics, output: OutputInbox,
         logger: Logger) throws {
        self.lane = lane
        self.config = config
        self.state = state
        self.metrics = metrics
        self.output = output
        self.logger = logger
        let db = try PostgresConnection(connectionString: config.postgresURL, logger: logger)
        lane.interrupter = db.interrupter
        writer = BatchWriter(connection: db, settings: BatchWriter.Settings(config: config))
    }

    func run() {
        lane.update { $0.state = .idle }
        // Until the consumer finished the queue (it stopped) and every batch in it is written.
        while let batch = lane.queue.take() {
            lane.update { $0.state = .writing }
            // The rest of a batch is never committed without the privacy requests before it.
            let parts = batch.transactions()
            for (i, part) in parts.enumerated() {
                guard write(part) else {
                    for rest in parts[(i + 1)...] { drop(rest, reason: "the privacy requests of its batch were dropped") }
                    break
                }
            }
            lane.queue.done()
            lane.update { $0.state = .idle }
        }
        lane.update { $0.state = .stopped }
        writer.db.close()
    }

    /// Writes a batch until it is committed, fenced away, bisected down to the row PostgreSQL
    /// rejects, or dropped because the stop deadline passed or the error cannot be cured (safe:
    /// offsets live in PostgreSQL). False when it dropped the batch or a part of it.
    private func write(_ original: PreparedBatch) -> Bool {
        var batch = original
        var attempt = 0
        while !batch.isEmpty {
            if state.secondsLeft(margin: .seconds(8)) <= 0 {
                drop(batch, reason: "the stop deadline passed while PostgreSQL was failing")
                return false
            }
            let started = ContinuousClock.now
            do {
                switch try writer.write(batch) {
                case .committed(let counts):
                    committed(batch, counts: counts, seconds: (ContinuousClock.now - started).seconds)
                    return true
                case .fenced(let partitions):
                    metrics.fencedBatches.increment()
                    logger.warning("batch fenced: partitions now owned elsewhere", metadata: [
                        "partitions": "\(partitions.sorted().map(\.description).joined(separator: ","))"])
                    state.reportFenced(batch.spans.filter { partitions.contains($0.partition) })
                    batch = batch.removing(partitions)
                }
            } catch let error as PostgresError where FailureHandling(error) == .rejectRecord {
                if batch.items.count > 1 {
                    logger.warning("PostgreSQL rejected a batch (\(error)); bisecting to find the record")
                    let (a, b) = batch.split(at: batch.items.count / 2)
                    guard write(a) else {
                        drop(b, reason: "the part before it was dropped")
                        return false
                    }
                    batch = b
                } else {
                    batch = batch.deadLettering(item: 0, rejection: RecordRejection(.rejectedByDatabase, field: error.sqlState),
                                                consumerGroup: config.groupId)
                }
            } catch {
                if error is PostgresError {
                    metrics.postgresErrors.increment()
                }
                guard FailureHandling.shouldRetry(error, "writer \(lane.index) cannot write a batch", state: state) else {
                    lane.update { $0.state = .retrying; $0.lastError = "\(error)" }
                    drop(batch, reason: "PostgreSQL refused it with an error that retrying cannot cure")
                    return false
                }
                attempt += 1
                lane.update { $0.state = .retrying; $0.lastError = "\(error)" }
                let backoff = min(config.retryMaxBackoffSeconds, 0.1 * pow(2, Double(min(attempt, 12))))
                let pause = min(backoff * Double.random(in: 0.5...1.0), max(0.05, state.secondsLeft(margin: .seconds(8))))
                logger.warning("batch not written; retrying in \(String(format: "%.1f", pause)) s", metadata: [
                    "error": "\(error)", "attempt": "\(attempt)", "writer": "\(lane.index)"])
                state.sleep(pause)
                try? writer.reconnect()
            }
        }
        return true
    }

    private func drop(_ batch: PreparedBatch, reason: String) {
        logger.warning("dropping an uncommitted batch: \(reason); its records are read again from PostgreSQL's offsets at the next start",
                       metadata: ["records": "\(batch.items.count)", "writer": "\(lane.index)"])
    }

    private func committed(_ batch: PreparedBatch, counts: WriteCounts, seconds: Double) {
        metrics.batchesCommitted.increment()
        metrics.batchRecords.record(Double(batch.items.count))
        metrics.commitSeconds.recordSeconds(seconds)
        for (table, n) in counts.rows where n > 0 { metrics.rowsWritten(table: table).increment(by: n) }
        // Counted per reason first: looking a labelled counter up costs a few allocations.
        var deadLettersByReason: [String: Int] = [:]
        for (_, d) in batch.deadLetters { deadLettersByReason[d.rejection.code.rawValue, default: 0] += 1 }
        for (reason, n) in deadLettersByReason { metrics.deadLetters(reason: reason).increment(by: n) }
        let now = Date()
        lane.update {
            $0.batchesCommitted += 1
            $0.recordsCommitted += batch.items.count
            $0.deadLetters += counts.deadLetters
            $0.stageSeconds.merge(counts.stageSeconds, uniquingKeysWith: +)
            $0.lastCommitAt = now
            $0.lastError = nil
        }
        state.noteCommitted(batch.spans)
        let windowsChanged = config.windowsEnabled && (!batch[.training].isEmpty || !batch[.actions].isEmpty || counts.privacyRequests > 0)
        // A row PostgreSQL rejected has no bytes here (they were encoded away): the output thread
        // reads them back from the source topic.
        let letters = batch.deadLetters.map {
            DeadLetterPublication(source: $0.source, key: $0.letter.key, value: $0.letter.value, reason: $0.letter.rejection.description,
                                  fetchFromSource: $0.letter.rejection.code == .rejectedByDatabase)
        }
        if !output.post(deadLetters: letters, windowsChanged: windowsChanged, urgent: counts.privacyRequests > 0) {
            logger.info("dead letters left for recovery from their source topic (publication backlog over its memory bound)")
        }
    }
}
