public import CloudWasteStream
public import Foundation
import Synchronization

/// What the HTTP endpoints read, all of it in memory: the pipeline's status and metrics (live), a
/// snapshot of the database refreshed in the background (`DatabaseSnapshotService`), and the last
/// hour of progress. A request never waits on PostgreSQL, so /healthz, /readyz and /metrics answer
/// while the database is frozen, and /stats and the status page show the last good snapshot.
public final class OperatorState: Sendable {
    public struct DatabaseSnapshot: Sendable {
        public var report: StatsReport?
        /// Why the last refresh failed (nil after a good one).
        public var error: String?
        public var refreshedAt: Date?
    }

    public let pipeline: StreamPipeline
    public let config: StreamConfig
    private let database = Mutex(DatabaseSnapshot())
    private let progress = Mutex(StatusHistory())

    public init(pipeline: StreamPipeline, config: StreamConfig) {
        self.pipeline = pipeline
        self.config = config
    }

    public var snapshot: DatabaseSnapshot { database.withLock { $0 } }
    public var history: StatusHistory { progress.withLock { $0 } }

    func store(report: StatsReport) { database.withLock { $0 = DatabaseSnapshot(report: report, error: nil, refreshedAt: Date()) } }
    func store(error: String) { database.withLock { $0.error = error } }

    /// Appends a progress sample (the snapshot service does it every 10 s).
    public func sample(now: Date = Date()) {
        let s = pipeline.status
        progress.withLock {
            $0.append(.init(at: now, recordsCommitted: s.recordsCommitted, lag: s.lag.values.reduce(0, +)))
        }
    }
}
