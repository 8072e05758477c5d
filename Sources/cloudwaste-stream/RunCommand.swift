import ArgumentParser
import CloudWasteStream
import Foundation
import Logging
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the daemon until SIGTERM/SIGINT.")

    @OptionGroup var options: GlobalOptions
    @Option(name: .customLong("until-idle"), help: "Exit 0 once every assigned partition is caught up and idle this many seconds.")
    var untilIdle: Double?

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
            // One machine-readable line for scripts (and the benchmark).
            let s = pipeline.status
            let seconds = s.firstRecordAt.flatMap { first in s.lastCommitAt.map { $0.timeIntervalSince(first) } } ?? 0
            print("run: records=\(s.recordsCommitted) batches=\(s.batchesCommitted) dead_letters=\(s.deadLetters) seconds=\(String(format: "%.3f", seconds)) rps=\(Int(s.throughput ?? 0)) peak_rss_mb=\((ProcessMemory.peakResidentBytes ?? 0) / 1_048_576)"
                  + s.stageSeconds.keys.sorted().map { " stage_\($0)=\(String(format: "%.2f", s.stageSeconds[$0]!))" }.joined())
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
    }
    if config.httpPort != 0 {
        let endpoints = OperatorEndpoints(pipeline: pipeline, config: config)
        let server: HTTPServer
        do {
            server = try HTTPServer(host: config.httpHost, port: config.httpPort) { endpoints.handle($0) }
        } catch {
            throw UsageFailure("\(error)")
        }
        logger.info("HTTP on port \(server.port): /healthz /readyz /metrics /stats /")
        services.append(.init(service: HTTPService(server: server)))
    }
    services.append(.init(service: PipelineService(pipeline: pipeline), successTerminationBehavior: .gracefullyShutdownGroup,
                          failureTerminationBehavior: .gracefullyShutdownGroup))
    let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
}

struct HTTPService: Service {
    let server: HTTPServer
    func run() async throws {
        server.start()
        try? await gracefulShutdown()
        server.stop()
    }
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
        do { try pipeline.start() } catch { throw RuntimeFailure("cannot start: \(error)") }
        await withGracefulShutdownHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread {
                    pipeline.waitUntilFinished()
                    c.resume()
                }
            }
        } onGracefulShutdown: {
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
