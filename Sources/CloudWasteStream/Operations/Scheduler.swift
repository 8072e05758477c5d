public import CloudWastePostgres
import Foundation
public import Logging
import Synchronization

/// The daemon's built-in schedules (SPEC §8): a weekly export and a daily retention clean-up, as
/// cron expressions in the config (`schedules.export`, `schedules.retention`; "" disables one).
///
/// - Every instance of a consumer group runs a Scheduler; a schedule runs on one of them only,
///   the one that wins `pg_try_advisory_lock(hashtext(group || ':' || schedule))`. The lock is
///   non-blocking and session-level, so the others skip it and a crashed runner's lock goes with
///   its connection.
/// - Missed runs are caught up: `schedule_runs.last_fire` remembers the cron firing that was last
///   served, and whenever the latest firing at or before now is later than it (the daemon was down,
///   or this is its first start) the job runs now, once, however many firings were missed.
///   last_fire is written only after the job succeeded; it is re-read under the lock, so a firing
///   that another instance just served is not served twice.
/// - A failed job is retried after `retryDelaySeconds`, not every tick.
public final class Scheduler: Sendable {
    public struct Job: Sendable {
        public var name: String
        public var cron: CronSchedule
    }

    public static let exportJob = "export"
    public static let retentionJob = "retention"

    public let jobs: [Job]
    public let config: StreamConfig
    /// How often the background thread looks for due schedules.
    static let intervalSeconds: Double = 30
    static let retryDelaySeconds: Int64 = 600

    private let connect: @Sendable () throws -> PostgresConnection
    private let logger: Logger
    /// What runs keep between them: the connection and when each failed job may run again.
    /// Held for a whole `runDue`, so the background thread and a caller never share the connection.
    private struct Session {
        var connection: PostgresConnection?
        var retryAfter: [String: Timestamp] = [:]
    }

    private let session = Mutex(Session())
    private let stopping = Atomic<Bool>(false)
    private let threadState = Mutex<(started: Bool, finished: DispatchSemaphore?)>((false, nil))
    private let wake = DispatchSemaphore(value: 0)

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `connect` opens a new PostgreSQL connection (default: `config.postgresURL`).
    public init(config: StreamConfig, logger: Logger = Logger(label: "cloudwaste.scheduler"),
                connect: (@Sendable () throws -> PostgresConnection)? = nil) throws(StreamConfig.Invalid) {
        self.config = config
        self.logger = logger
        let url = config.postgresURL
        self.connect = connect ?? { try PostgresConnection(connectionString: url) }
        var jobs: [Job] = []
        for (name, text) in [(Self.exportJob, config.exportSchedule), (Self.retentionJob, config.retentionSchedule)] {
            guard let text else { continue }
            do { jobs.append(Job(name: name, cron: try CronSchedule(text))) } catch {
                throw StreamConfig.Invalid("schedules.\(name) '\(text)': \(error)")
            }
        }
        self.jobs = jobs
        if jobs.contains(where: { $0.name == Self.retentionJob }) {
            do { try RetentionCleaner(config: config).validate() } catch { throw StreamConfig.Invalid(error.description) }
        }
    }

    deinit { stop() }

    /// The advisory-lock key text of a schedule: `hashtext(lockKey)` is the lock.
    public static func lockKey(group: String, schedule: String) -> String { "\(group):\(schedule)" }

    /// Runs every schedule that is due or was missed at `now`, unless another instance holds its
    /// lock; returns the names of those it ran. Throws after trying them all if any failed.
    @discardableResult
    public func runDue(now: Timestamp = .now()) throws -> [String] {
        try session.withLock { (session) throws -> [String] in
            var ran: [String] = []
            var failures: [String] = []
            for job in jobs {
                if stopping.load(ordering: .relaxed) { break }
                guard let fire = job.cron.previousFire(atOrBefore: now) else { continue }
                if let until = session.retryAfter[job.name], now < until { continue }
                do {
                    let db = try openConnection(&session)
                    if try serve(job, fire: fire, db: db) { ran.append(job.name) }
                    session.retryAfter[job.name] = nil
                } catch {
                    if let pg = error as? PostgresError, pg.kind == .connection { Self.dropConnection(&session) }
                    session.retryAfter[job.name] = Timestamp(micros: now.micros + Self.retryDelaySeconds * 1_000_000)
                    failures.append("\(job.name): \(error)")
                    logger.error("scheduled \(job.name) failed (retried in \(Self.retryDelaySeconds) s): \(error)")
                }
            }
            if !failures.isEmpty { throw Failure(description: "scheduled jobs failed: " + failures.joined(separator: "; ")) }
            return ran
        }
    }

    /// Whether the job ran. False: already served, or another instance holds the lock.
    private func serve(_ job: Job, fire: Timestamp, db: PostgresConnection) throws -> Bool {
        if let last = try lastFire(job.name, db), last >= fire { return false }
        let key = Self.lockKey(group: config.groupId, schedule: job.name)
        guard try db.query("SELECT pg_try_advisory_lock(hashtext(\(key)))").decode(Bool.self) else {
            logger.debug("schedule \(job.name) is due but another instance of \(config.groupId) holds it")
            return false
        }
        defer { _ = try? db.query("SELECT pg_advisory_unlock(hashtext(\(key)))") }
        if let last = try lastFire(job.name, db), last >= fire { return false }
        logger.info("running scheduled \(job.name) for the firing of \(fire)")
        let detail = try perform(job, fire: fire, db: db)
        let s = PostgresIdentifier(config.postgresSchema)
        try db.query("""
            INSERT INTO \(s).schedule_runs (schedule, last_fire, finished_at, detail)
            VALUES (\(job.name), \(fire.postgresText)::timestamptz, now(), \(detail))
            ON CONFLICT (schedule) DO UPDATE SET last_fire = EXCLUDED.last_fire, finished_at = EXCLUDED.finished_at, detail = EXCLUDED.detail
            """)
        logger.info("scheduled \(job.name) done: \(detail)")
        return true
    }

    private func perform(_ job: Job, fire: Timestamp, db: PostgresConnection) throws -> String {
        let cancelled: @Sendable () -> Bool = { [self] in stopping.load(ordering: .relaxed) }
        switch job.name {
        case Self.exportJob:
            guard let format = Exporter.Format(rawValue: config.exportFormat) else {
                throw Failure(description: "schedules.export_format must be jsonl or csv, not \(config.exportFormat)")
            }
            let dir = URL(fileURLWithPath: config.exportRoot).appendingPathComponent(Self.folderName(for: fire))
            let manifest = try Exporter(logger: logger, isCancelled: cancelled).run(
                db: db, schema: config.postgresSchema, days: config.exportDays, format: format, gzip: config.exportGzip,
                tables: [], outputDirectory: dir)
            return "\(manifest.totalRows) rows in \(manifest.files.count) files → \(dir.path)"
        default:
            var cleaner = RetentionCleaner(config: config)
            cleaner.isCancelled = cancelled
            let results = try cleaner.run(db)
            if cancelled() { throw Failure(description: "retention interrupted by shutdown") }
            return "deleted " + results.map { "\($0.table)=\($0.deletedRows)" }.joined(separator: " ")
        }
    }

    /// `20261130T030000Z`: one folder per firing, sortable, no characters that trouble other tools.
    public static func folderName(for t: Timestamp) -> String {
        let c = t.civil
        return "\(pad(c.year, 4))\(pad(c.month, 2))\(pad(c.day, 2))T\(pad(c.hour, 2))\(pad(c.minute, 2))\(pad(c.second, 2))Z"
    }

    private func lastFire(_ name: String, _ db: PostgresConnection) throws -> Timestamp? {
        let s = PostgresIdentifier(config.postgresSchema)
        let r = try db.query("SELECT (extract(epoch FROM last_fire) * 1000000)::bigint FROM \(s).schedule_runs WHERE schedule = \(name)")
        return r.rowCount == 0 ? nil : try r.decode(Int64?.self).map { Timestamp(micros: $0) }
    }

    private func openConnection(_ session: inout Session) throws -> PostgresConnection {
        if let connection = session.connection, connection.isConnected { return connection }
        Self.dropConnection(&session)
        let c = try connect()
        // The daemon may start this before its pipeline has migrated: schedule_runs must exist.
        try Migrator(schema: config.postgresSchema).migrate(c)
        session.connection = c
        return c
    }

    private static func dropConnection(_ session: inout Session) {
        session.connection?.close()
        session.connection = nil
    }

    /// Starts the background thread: a check now, then every `intervalSeconds` until `stop()`.
    public func start() {
        let finished = DispatchSemaphore(value: 0)
        let first = threadState.withLock { state -> Bool in
            guard !state.started else { return false }
            state = (true, finished)
            return true
        }
        guard first, !jobs.isEmpty else {
            if first { finished.signal() }
            return
        }
        DedicatedThread.start(name: "cw-scheduler") { [self] in
            while !stopping.load(ordering: .relaxed) {
                do {
                    let ran = try runDue(now: .now())
                    if !ran.isEmpty { logger.debug("schedules run: \(ran.joined(separator: ", "))") }
                } catch {
                    // Already logged per job; a lost database is retried on the next tick.
                }
                if wake.wait(timeout: .now() + Self.intervalSeconds) == .success { break }
            }
            session.withLock { Self.dropConnection(&$0) }
            finished.signal()
        }
    }

    /// Stops the background thread: a running export or clean-up stops early (an export removes
    /// its files; retention keeps the batches it committed). Returns once the thread is gone.
    public func stop() {
        let finished = threadState.withLock { state -> DispatchSemaphore? in
            let f = state.finished
            state.finished = nil
            return f
        }
        stopping.store(true, ordering: .relaxed)
        guard let finished else { return }
        wake.signal()
        finished.wait()
    }
}
