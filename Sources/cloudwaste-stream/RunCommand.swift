import ArgumentParser
import CloudWasteStream
import Foundation
import Logging
import CloudWasteHTTP
import Metrics
import ServiceLifecycle
import Synchronization

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the daemon until SIGTERM/SIGINT.")

    @OptionGroup var options: GlobalOptions
    @Option(name: .customLong("until-idle"), parsing: .unconditional,
            help: "Exit 0 once every assigned partition is caught up and idle this many seconds.")
    var untilIdle: Double?
    @Option(help: "Also write what the run did as JSON to this file when it ends (for scripts; the run: line has the same).")
    var summaryFile: String?

    func validate() throws {
        if let untilIdle, !(untilIdle.isFinite && untilIdle >= 0) {
            throw ValidationError("--until-idle takes a number of seconds, zero or more, not \(untilIdle)")
        }
    }

    func run() async throws {
        try await withExitCodes {
            let config = try options.load()
            let key = try loadKey(config)
            let regions = try loadRegions(config)
            let logger = makeLogger("cloudwaste.run")
            let pipeline = StreamPipeline(config: config, key: key, regions: regions,
                                          options: .init(untilIdleSeconds: untilIdle), logger: logger)
            // --until-idle runs are batch jobs: the weekly export and daily clean-up belong to the daemon.
            try await runServices(pipeline: pipeline, config: config, logger: logger, startScheduler: untilIdle == nil)
            if let failure = pipeline.failure { throw RuntimeFailure(failure) }
            // One machine-readable line for scripts; the same as JSON with --summary-file.
            let summary = RunSummary(pipeline.status)
            print(summary.line)
            if let summaryFile {
                do { try summary.write(to: summaryFile) } catch { throw RuntimeFailure("cannot write the run summary to \(summaryFile): \(error)") }
            }
        }
    }
}

/// Runs the pipeline with its HTTP endpoints in a ServiceGroup: on SIGTERM the pipeline (last
/// service) drains and commits first while HTTP still answers, then HTTP stops.
func runServices(pipeline: StreamPipeline, config: StreamConfig, logger: Logger, startScheduler: Bool = false) async throws {
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
    if startScheduler && (config.exportSchedule != nil || config.retentionSchedule != nil) {
        let scheduler: Scheduler
        do { scheduler = try Scheduler(config: config, logger: makeLogger("cloudwaste.scheduler")) } catch { throw UsageFailure("\(error)") }
        services.append(.init(service: SchedulerService(scheduler: scheduler)))
        if let schedule = config.exportSchedule {
            logger.info("scheduled exports (\(schedule) UTC, \(config.exportFormat)\(config.exportGzip ? ", gzip" : "")) go to \(config.exportRoot)/<UTC time>/")
        }
    }
    // Libraries that report through swift-metrics land in the pipeline's registry, on /metrics.
    MetricsSystem.bootstrap(pipeline.metrics.factory)
    if config.httpPort != 0 {
        let token: String?
        do { token = try config.loadHTTPToken() } catch { throw UsageFailure("\(error)") }
        let state = OperatorState(pipeline: pipeline, config: config)
        services.append(.init(service: OperatorServer.application(state: state, host: config.httpHost, port: config.httpPort, token: token,
                                                                  logger: makeLogger("cloudwaste.http"))))
        services.append(.init(service: DatabaseSnapshotService(state: state, logger: makeLogger("cloudwaste.http"))))
        logger.info("HTTP on \(config.httpHost):\(config.httpPort): /healthz /readyz /metrics /stats /\(token == nil ? "" : " (bearer token on /stats, / and /exports)")")
    }
    services.append(.init(service: PipelineService(pipeline: pipeline), successTerminationBehavior: .gracefullyShutdownGroup,
                          failureTerminationBehavior: .gracefullyShutdownGroup))
    var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    // The pipeline bounds its own stop to the graceful period; past it (plus a margin) the group
    // cancels whatever is left, so the process always ends.
    configuration.maximumGracefulShutdownDuration = .seconds(config.shutdownGraceSeconds + 5)
    let secondSignal = SecondSignalExit(logger: logger)
    defer { secondSignal.cancel() }
    try await ServiceGroup(configuration: configuration).run()
}

/// SPEC §10: a second SIGTERM/SIGINT during a graceful stop ends the process at once (safe: the
/// offsets of everything committed live in PostgreSQL; what is open is read again).
final class SecondSignalExit {
    private let sources: [any DispatchSourceSignal]

    init(logger: Logger) {
        let seen = Mutex(0)
        sources = [SIGTERM, SIGINT].map { sig in
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if seen.withLock({ $0 += 1; return $0 }) >= 2 {
                    FileHandle.standardError.write(Data("cloudwaste-stream: second signal: exiting now\n".utf8))
                    _exit(128 + sig)
                }
            }
            source.resume()
            return source
        }
    }

    func cancel() { for s in sources { s.cancel() } }
}

/// The built-in export and retention schedules (one instance per group runs each, by advisory lock).
struct SchedulerService: Service {
    let scheduler: Scheduler
    func run() async throws {
        scheduler.start()
        try? await gracefulShutdown()
        scheduler.stop()
    }
}

struct PipelineService: Service {
    let pipeline: StreamPipeline
    func run() async throws {
        do {
            try await DedicatedThread.run(name: "cw-start") { try pipeline.start() }
        } catch {
            throw RuntimeFailure("cannot start: \(error)")
        }
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await DedicatedThread.run(name: "cw-wait") { pipeline.waitUntilFinished() }
        } onCancelOrGracefulShutdown: {
            pipeline.requestStop()
        }
    }
}

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Create or upgrade the tables.")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await withExitCodes {
            let config = try options.load()
            let db = try PostgresConnection(connectionString: config.postgresURL)
            let applied = try Migrator(schema: config.postgresSchema).migrate(db)
            print(applied.isEmpty ? "schema \(config.postgresSchema) is up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", ")) to schema \(config.postgresSchema)")
        }
    }
}

import CloudWastePostgres
