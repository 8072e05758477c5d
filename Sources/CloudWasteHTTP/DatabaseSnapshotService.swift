import CloudWastePostgres
import CloudWasteStream
import Foundation
import Synchronization
public import Logging
public import ServiceLifecycle

/// Refreshes the database snapshot behind /stats and the status page, on a connection of its own
/// with a statement timeout: within 5 s of new commits or recomputes, else every `interval`, and
/// never more than a tenth of the time (`DutyCyclePacing`: a snapshot that takes 2 s waits 18 s).
/// Samples the pipeline's progress every 5 s. A slow or frozen database delays the next snapshot,
/// never a request.
public struct DatabaseSnapshotService: Service {
    let state: OperatorState
    let interval: Duration
    let logger: Logger
    private let refresher: Refresher

    public init(state: OperatorState, interval: Duration = .seconds(60), logger: Logger) {
        self.state = state
        self.interval = interval
        self.logger = logger
        refresher = Refresher(state: state, logger: logger)
    }

    /// One refresh now, blocking (tests; the service does this every `interval`).
    public func refreshNow() { refresher.refresh() }

    public func run() async throws {
        let refresher = self.refresher
        // The counts scan every table, so a snapshot of a large database takes a while: at most a
        // tenth of the time goes to them, however often commits arrive.
        var pacing = DutyCyclePacing(busyInterval: .zero, idleInterval: interval, longestGap: .seconds(300))
        var progressAtRefresh = (-1, -1)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            state.sample()
            let s = state.pipeline.status
            // New commits or a new cost-trend recompute change what the snapshot would show.
            let progress = (s.recordsCommitted, s.windowRecomputes)
            if pacing.isDue(at: .now, workWaiting: progress != progressAtRefresh) {
                progressAtRefresh = progress
                let start = ContinuousClock.now
                // Blocking libpq calls, off the cooperative pool; bounded by statement_timeout.
                _ = try? await DedicatedThread.run(name: "cw-stats") { refresher.refresh() }
                pacing.ran(from: start, to: .now)
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(5)) }
        }
    }

    /// Owns the snapshot's connection (one refresh at a time: the service's loop, or a test).
    final class Refresher: Sendable {
        let state: OperatorState
        let logger: Logger
        private let connection = Mutex<PostgresConnection?>(nil)

        init(state: OperatorState, logger: Logger) {
            self.state = state
            self.logger = logger
        }

        func refresh() {
            connection.withLock { connection in
                do {
                    let db: PostgresConnection
                    if let open = connection, open.isConnected {
                        db = open
                    } else {
                        db = try PostgresConnection(connectionString: state.config.postgresURL, logger: logger)
                        try db.query("SET statement_timeout = '10s'; SET lock_timeout = '2s'")
                        connection = db
                    }
                    state.store(report: try StatsReport.collect(db, schema: state.config.postgresSchema, groupId: state.config.groupId))
                } catch {
                    connection = nil
                    state.store(error: "\(error)")
                    logger.debug("stats snapshot not refreshed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
