public import CloudWasteStream
public import Foundation

/// `/stats`: the live status of the pipeline and the latest database snapshot, as JSON.
public struct StatusDocument: Encodable, Sendable {
    public struct Writer: Encodable, Sendable {
        var index: Int
        var state: String
        var batchesCommitted: Int
        var recordsCommitted: Int
        var lastCommitAgeSeconds: Double?
        var lastError: String?
    }

    var ready: Bool
    var notReadyReason: String?
    var assignedPartitions: Int
    var recordsConsumed: Int
    var recordsCommitted: Int
    var batchesCommitted: Int
    var deadLetters: Int
    var uptimeSeconds: Int
    var lastCommitAgeSeconds: Double?
    var recordsPerSecondLastMinute: Double?
    var lagTotal: Int64
    var writers: [Writer]
    var recordsInByTopic: [String: Int]
    var database: StatsReport?
    var databaseSnapshotAgeSeconds: Double?
    var databaseError: String?

    public init(state: OperatorState, now: Date = Date()) {
        let s = state.pipeline.status
        let snapshot = state.snapshot
        let exposition = MetricsExposition(state.pipeline.metrics.render())
        ready = s.ready
        notReadyReason = s.notReadyReason
        assignedPartitions = s.assignedPartitions
        recordsConsumed = s.recordsConsumed
        recordsCommitted = s.recordsCommitted
        batchesCommitted = s.batchesCommitted
        deadLetters = s.deadLetters
        uptimeSeconds = Int(now.timeIntervalSince(s.startedAt))
        lastCommitAgeSeconds = s.lastCommitAt.map { now.timeIntervalSince($0) }
        recordsPerSecondLastMinute = state.history.rate(over: 60, now: now)
        lagTotal = s.lag.values.reduce(0, +)
        writers = s.writers.map {
            Writer(index: $0.index, state: $0.state.rawValue, batchesCommitted: $0.batchesCommitted, recordsCommitted: $0.recordsCommitted,
                   lastCommitAgeSeconds: $0.lastCommitAt.map { now.timeIntervalSince($0) }, lastError: $0.lastError)
        }
        recordsInByTopic = exposition.values("cloudwaste_records_in_total", by: "topic").mapValues { Int($0) }
        database = snapshot.report
        databaseSnapshotAgeSeconds = snapshot.refreshedAt.map { now.timeIntervalSince($0) }
        databaseError = snapshot.error
    }

    public var json: [UInt8] { JSONCoding.bytes(self) }
}
