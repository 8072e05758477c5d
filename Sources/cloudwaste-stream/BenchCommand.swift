import ArgumentParser
import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
import CloudWasteStream
import Foundation
import Logging

/// `cloudwaste-stream bench`: the daemon measured side by side with the limits of what it sits
/// between, in one run on one machine: the mock broker in a process of its own, a tuned
/// librdkafka consumer reading the same records (Kafka's limit), PostgreSQL alone upserting the
/// rows the daemon wrote (PostgreSQL's limit), and the machine's CPU use during the daemon's run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Measure the pipeline against Kafka's and PostgreSQL's own limits on this machine.")

    @Option(help: "Records to generate.") var records = 1_000_000
    @Option(help: "Runs per measurement; the median is reported.") var runs = 3
    @Option(help: "Folder for the scratch PostgreSQL and the mock broker.") var stateDir = ".state/bench"
    @Option(help: "Seconds of paced traffic for the latency measurement (0 skips it).") var latencySeconds = 10
    @Option(help: "Records/s of the paced traffic (0: half the end-to-end rate; a fixed rate compares two builds).") var latencyRate = 0.0
    @Option(help: "Most records per transaction (pipeline.batch_max_records).") var batchSize = 5000
    @Option(help: "Writer threads of the daemon (0: one per core).") var writers = 0
    @Option(help: "Large metric-samples records (10,000 points, ≈420 KB each) for the memory measurement (0 skips it).") var largeRecords = 100
    @Flag(help: "Also measure the plain Python consumer (scripts/bench-python-consumer.py; needs confluent-kafka and psycopg).") var python = false
    @Flag(help: "Measure only the end-to-end run with windows on (quick profiling runs; prints no bench: line).") var endToEndOnly = false
    @Flag(help: "PostgreSQL on CPU 0 alone, the daemon, the mock broker and this benchmark on the other CPUs (as PostgreSQL on a machine of its own).") var pinned = false

    func run() async throws {
        try await withExitCodes {
            guard records > 0, runs > 0, batchSize > 0, writers >= 0, latencyRate >= 0 else {
                throw UsageFailure("--records, --runs and --batch-size must be positive, --writers and --latency-rate not negative")
            }
            let bench = try await Benchmark(records: records, batchSize: batchSize, writers: writers,
                                            stateDirectory: URL(fileURLWithPath: stateDir).standardizedFileURL, largeRecords: largeRecords,
                                            pinned: pinned)
            do {
                try await measure(bench)
            } catch {
                await bench.shutdown()
                throw error
            }
            await bench.shutdown()
        }
    }

    private func measure(_ bench: Benchmark) async throws {
        if endToEndOnly {
            for run in 1...runs {
                let on = try await bench.endToEnd(windows: true, tag: "on\(run)")
                print("run \(run): e2e=\(Int(on.rps)) cpu=\(Int(on.machineCPU * 100))% peak_rss_mb=\(Int(on.peakRSSMB)) \(on.coresText) \(on.perRecordText)")
            }
            return
        }
        var kafka: [Double] = [], pg: [Double] = [], e2e: [Double] = [], e2eOff: [Double] = [], cpu: [Double] = [],
            rss: [Double] = [], cores: [[String: Double]] = [], py: [Double] = [], pyUs: [Double] = [],
            daemonUs: [Double] = [], postgresUs: [Double] = [], pgLimitUs: [Double] = [], allocations: [Double] = [], ownAllocations: [Double] = [],
            pgHex: [Double] = [], pgHexUs: [Double] = [], mibPerMillion: [Double] = [], mibPerMillionHex: [Double] = [],
            pgUpdates: [Double] = [], pgHexUpdates: [Double] = [], pgBoth: [Double] = [], pgHexBoth: [Double] = [], pgAllTablesUs: [Double] = [], postgresOffUs: [Double] = [],
            migrationSeconds: [Double] = []
        for run in 1...runs {
            kafka.append(try bench.kafkaLimit())
            let on = try await bench.endToEnd(windows: true, tag: "on\(run)")
            e2e.append(on.rps)
            cpu.append(on.machineCPU)
            rss.append(on.peakRSSMB)
            cores.append(on.cores)
            daemonUs.append(on.microsPerRecord("daemon"))
            postgresUs.append(on.microsPerRecord("postgres"))
            if let a = on.allocationsPerRecord { allocations.append(a) }
            if let a = on.ownAllocationsPerRecord { ownAllocations.append(a) }
            let limits = try bench.postgresLimits(database: on.database)
            let limit = limits[.bytea]!, hexLimit = limits[.hex]!
            pg.append(limit.rowsPerSecond)
            pgLimitUs.append(limit.postgresMicrosPerRow)
            mibPerMillion.append(limit.mebibytesPerMillionRows)
            pgUpdates.append(limit.updatesPerSecond)
            pgBoth.append(limit.bothPassesPerSecond)
            pgHexBoth.append(hexLimit.bothPassesPerSecond)
            pgHex.append(hexLimit.rowsPerSecond)
            pgHexUs.append(hexLimit.postgresMicrosPerRow)
            mibPerMillionHex.append(hexLimit.mebibytesPerMillionRows)
            pgHexUpdates.append(hexLimit.updatesPerSecond)
            if let s = hexLimit.migrationSecondsPerMillionRows { migrationSeconds.append(s) }
            pgAllTablesUs.append(try bench.postgresLimitAllTables(database: on.database))
            let off = try await bench.endToEnd(windows: false, tag: "off\(run)")
            e2eOff.append(off.rps)
            postgresOffUs.append(off.microsPerRecord("postgres"))
            if python {
                let consumer = try await bench.pythonConsumer(tag: "py\(run)")
                py.append(consumer.rps)
                pyUs.append(consumer.microsPerRecord)
            }
            print("run \(run): kafka_limit=\(Int(kafka.last!)) pg_limit=\(Int(pg.last!)) e2e=\(Int(e2e.last!)) cpu=\(Int(cpu.last! * 100))% "
                  + "e2e_windows_off=\(Int(e2eOff.last!))\(python ? " python=\(Int(py.last!)) python_us_per_record=\(String(format: "%.1f", pyUs.last!))" : "") peak_rss_mb=\(Int(rss.last!)) \(on.coresText) "
                  + "\(on.perRecordText) pg_limit_postgres_us_per_row=\(String(format: "%.1f", limit.postgresMicrosPerRow)) "
                  + "pg_limit_hex=\(Int(hexLimit.rowsPerSecond)) pg_limit_hex_postgres_us_per_row=\(String(format: "%.1f", hexLimit.postgresMicrosPerRow)) "
                  + "pg_limit_all_tables_postgres_us_per_record=\(String(format: "%.1f", pgAllTablesUs.last!)) "
                  + "postgres_us_per_record_windows_off=\(String(format: "%.1f", postgresOffUs.last!))")
        }
        let pacedRate = latencyRate > 0 ? latencyRate : median(e2e) / 2
        let latency = latencySeconds > 0 ? try bench.latency(rate: pacedRate, seconds: latencySeconds) : (p50: 0, p99: 0)
        let large = largeRecords > 0 ? try await bench.largeRecordsRSS() : 0
        let m = (kafka: median(kafka), pg: median(pg), e2e: median(e2e), off: median(e2eOff), cpu: median(cpu), py: median(py), pyUs: median(pyUs),
                 daemonUs: median(daemonUs), postgresUs: median(postgresUs), pgLimitUs: median(pgLimitUs), allocations: median(allocations), ownAllocations: median(ownAllocations),
                 pgHex: median(pgHex), pgHexUs: median(pgHexUs), mib: median(mibPerMillion), mibHex: median(mibPerMillionHex),
                 migration: median(migrationSeconds), pgUpdates: median(pgUpdates), pgHexUpdates: median(pgHexUpdates), pgBoth: median(pgBoth), pgHexBoth: median(pgHexBoth),
                 pgAllTablesUs: median(pgAllTablesUs), postgresOffUs: median(postgresOffUs))
        let us = { (v: Double) in String(format: "%.1f", v) }
        let setup = pinned ? "pinned: PostgreSQL alone on CPU 0, daemon + broker on the others" : "shared: everything on all \(ProcessInfo.processInfo.activeProcessorCount) cores"
        let medianCores = Dictionary(uniqueKeysWithValues: ["daemon", "postgres", "mock-broker"].map { g in (g, median(cores.map { $0[g] ?? 0 })) })
        let coresText = medianCores.keys.sorted().map { "\($0) \(String(format: "%.2f", medianCores[$0]!))" }.joined(separator: ", ")
        print("""

            | measurement (median of \(runs)) | value |
            |---|---|
            | set-up | \(setup) |
            | records | \(records) (\(bench.partitionCount) partitions, \(bench.averageBytes) B average; mock broker in its own process) |
            | Kafka limit: tuned librdkafka consumer, no decoding | \(Int(m.kafka)) records/s |
            | PostgreSQL limit: the daemon's ml_training_data rows, binary COPY → temp staging → INSERT … ON CONFLICT, \(batchSize) per transaction, one connection; best of 3 rounds alternating with the hex shape below | \(Int(m.pg)) rows/s |
            | the same rows with pseudonyms as 64 hex characters of text (before SPEC v1.2) | \(Int(m.pgHex)) rows/s (bytea × \(String(format: "%.2f", m.pg / max(1, m.pgHex)))); PostgreSQL \(us(m.pgHexUs)) µs per row |
            | the same rows upserted again (every row a conflict), bytea / hex text | \(Int(m.pgUpdates)) / \(Int(m.pgHexUpdates)) rows/s (× \(String(format: "%.2f", m.pgUpdates / max(1, m.pgHexUpdates)))) |
            | both passes, new keys then conflicts, as issue #20 measured the gain: bytea / hex text | \(Int(m.pgBoth)) / \(Int(m.pgHexBoth)) rows/s (× \(String(format: "%.2f", m.pgBoth / max(1, m.pgHexBoth)))) |
            | ml_training_data table + indexes per million rows, bytea / hex text | \(Int(m.mib)) MiB / \(Int(m.mibHex)) MiB (\(String(format: "%+.0f", (m.mib / max(1, m.mibHex) - 1) * 100)) %) |
            | migration 8 (hex text → bytea) on those hex rows, in one transaction | \(String(format: "%.1f", m.migration)) s per million rows |
            | end to end, windows on (\(bench.writerCount) writers) | \(Int(m.e2e)) records/s |
            | machine CPU busy during the end-to-end run | \(Int(m.cpu * 100)) % of \(ProcessInfo.processInfo.activeProcessorCount) cores (\(coresText) cores) |
            | end to end / PostgreSQL limit | \(String(format: "%.2f", m.e2e / m.pg)) |
            | daemon CPU per record, first record to last commit (all threads, /proc) | \(us(m.daemonUs)) µs |
            | PostgreSQL CPU per record end to end / per row of the PostgreSQL limit (/proc) | \(us(m.postgresUs)) µs / \(us(m.pgLimitUs)) µs (× \(String(format: "%.2f", m.postgresUs / max(0.001, m.pgLimitUs)))) |
            | PostgreSQL CPU per record end to end, windows on / windows off / PostgreSQL alone on every table's rows of the run (/proc) | \(us(m.postgresUs)) / \(us(m.postgresOffUs)) / \(us(m.pgAllTablesUs)) µs (× \(String(format: "%.2f", m.postgresUs / max(0.001, m.pgAllTablesUs))) / × \(String(format: "%.2f", m.postgresOffUs / max(0.001, m.pgAllTablesUs)))) |
            | heap allocations per record, daemon, whole run: all threads (the daemon's own threads, without librdkafka's) | \(allocations.isEmpty ? "not measured (run through scripts/bench.sh)" : String(format: "%.2f", m.allocations) + (ownAllocations.isEmpty ? "" : String(format: " (%.2f)", m.ownAllocations))) |
            | end to end, windows off | \(Int(m.off)) records/s |
            | windows on / windows off | \(String(format: "%.2f", m.e2e / m.off)) |
            \(python ? "| plain Python consumer (confluent-kafka + psycopg) | \(Int(m.py)) records/s (daemon ×\(String(format: "%.1f", m.e2e / max(1, m.py)))); CPU per record, first record to last commit (all threads): \(us(m.pyUs)) µs (the daemon's × \(String(format: "%.1f", m.pyUs / max(0.001, m.daemonUs))) less) |\n" : "")\
            | peak RSS of the daemon, \(records)-record backlog | \(Int(rss.max() ?? 0)) MiB |
            | peak RSS of the daemon, \(largeRecords) metric-samples records of 10,000 points | \(large > 0 ? "\(Int(large)) MiB" : "not measured") |
            | produce→visible at \(Int(pacedRate)) records/s (\(latencyRate > 0 ? "--latency-rate" : "half the end-to-end rate")) | \(latencySeconds > 0 ? "p50 \(Int(latency.p50)) ms, p99 \(Int(latency.p99)) ms" : "not measured") |

            """)
        print("bench: records=\(records) e2e_rps=\(Int(m.e2e)) pg_limit_rps=\(Int(m.pg)) ratio=\(String(format: "%.2f", m.e2e / m.pg)) "
              + "cpu=\(String(format: "%.2f", m.cpu)) kafka_limit_rps=\(Int(m.kafka)) windows_off_rps=\(Int(m.off)) "
              + "windows_ratio=\(String(format: "%.2f", m.e2e / m.off))\(python ? " python_rps=\(Int(m.py)) python_us_per_record=\(us(m.pyUs))" : "") "
              + "setup=\(pinned ? "pinned" : "shared") daemon_us_per_record=\(us(m.daemonUs)) postgres_us_per_record=\(us(m.postgresUs)) "
              + "pg_limit_us_per_row=\(us(m.pgLimitUs)) pg_limit_all_tables_us_per_record=\(us(m.pgAllTablesUs)) postgres_us_per_record_windows_off=\(us(m.postgresOffUs)) pg_limit_hex_rps=\(Int(m.pgHex)) pg_limit_hex_us_per_row=\(us(m.pgHexUs)) "
              + "pg_limit_updates_rps=\(Int(m.pgUpdates)) pg_limit_hex_updates_rps=\(Int(m.pgHexUpdates)) "
              + "pg_limit_both_passes_rps=\(Int(m.pgBoth)) pg_limit_hex_both_passes_rps=\(Int(m.pgHexBoth)) "
              + "mib_per_million_rows=\(Int(m.mib)) mib_per_million_rows_hex=\(Int(m.mibHex)) "
              + "migration8_s_per_million_rows=\(String(format: "%.1f", m.migration))\(allocations.isEmpty ? "" : " allocations_per_record=\(String(format: "%.2f", m.allocations))")\(ownAllocations.isEmpty ? "" : " own_allocations_per_record=\(String(format: "%.2f", m.ownAllocations))") "
              + "peak_rss_mb=\(Int(rss.max() ?? 0)) large_records_rss_mb=\(Int(large)) latency_rps=\(Int(pacedRate)) p50_ms=\(Int(latency.p50)) p99_ms=\(Int(latency.p99))")
    }
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    guard !s.isEmpty else { return 0 }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// The benchmark's environment and measurements.
final class Benchmark {
    let key = HMACKey.generate()
    let records: Int
    let batchSize: Int
    let writers: Int
    let largeRecords: Int
    let messages: [TrafficGenerator.Message]
    let partitions: [InputTopic: Int]
    let large: [TrafficGenerator.Message]
    let largeLayout: LocalEnvironment.KeyLayout
    let averageBytes: Int
    let postgres: ScratchPostgres
    let broker: MockBrokerProcess
    let directory: URL
    var partitionCount: Int { partitions.values.reduce(0, +) }
    var writerCount: Int { writers > 0 ? writers : StreamConfig().writerCount }
    private var databases = 0
    static let largePrefix = "large."

    init(records: Int, batchSize: Int, writers: Int, stateDirectory: URL, largeRecords: Int, pinned: Bool = false) async throws {
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        if pinned {
            guard cpus >= 2 else { throw UsageFailure("--pinned needs at least two CPUs") }
            // This process and every child it starts from now on (broker, daemon) off CPU 0.
            try await CPUAffinity.set(pids: [getpid()], cpus: "1-\(cpus - 1)")
        }
        self.records = records
        self.batchSize = batchSize
        self.writers = writers
        self.largeRecords = largeRecords
        directory = stateDirectory
        print("generating \(records) records…")
        messages = TrafficGenerator(seed: 1, badRecordShare: 0.005).messages(count: records)
        averageBytes = messages.isEmpty ? 0 : messages.reduce(0) { $0 + $1.value.count } / messages.count
        // The mock broker keeps ~5 MiB per partition: enough partitions for every record, and no
        // more (its cost grows with the partition count).
        large = TrafficGenerator(seed: 7).largeMetricSamples(count: largeRecords, points: 10_000)
        largeLayout = LocalEnvironment.packedLayout(for: large)
        let layout = LocalEnvironment.packedLayout(for: messages)
        let parts = layout.partitions
        partitions = parts
        ScratchPostgres.stopLeftover(in: stateDirectory.appendingPathComponent("postgres"))
        try? FileManager.default.removeItem(at: stateDirectory)
        try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        chmod(stateDirectory.path, 0o755)
        print("starting scratch PostgreSQL (fsync on) and the mock Kafka cluster in its own process (\(parts.values.reduce(0, +)) partitions)…")
        postgres = try ScratchPostgres(directory: stateDirectory.appendingPathComponent("postgres"), durable: true)
        try await postgres.start()
        if pinned, let postmaster = postgres.postmasterPID {
            // The postmaster and its processes on CPU 0; backends forked later inherit it.
            try await CPUAffinity.set(pids: CPUSampler.processTree(postmaster), cpus: "0")
        }
        var topics = LocalEnvironment.topics(prefix: "cloudwaste.", partitions: parts)
        topics.merge(LocalEnvironment.topics(prefix: Self.largePrefix, partitions: largeLayout.partitions)) { a, _ in a }
        broker = try await MockBrokerProcess(executable: selfExecutable(), topics: topics, directory: stateDirectory.appendingPathComponent("kafka"))
        let started = Date()
        try LocalEnvironment.publish(messages, bootstrap: broker.bootstrapServers, layout: layout)
        print("published in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        // The mock broker silently evicts beyond ~5 MiB per partition: check that all is there.
        let kept = try keptRecords(prefix: "cloudwaste.", partitions: parts)
        guard kept == Int64(records) else {
            throw RuntimeFailure("the mock broker kept \(kept) of \(records) records (≈5 MiB per partition): use fewer records")
        }
    }

    func shutdown() async {
        await broker.shutdown()
        // CLOUDWASTE_BENCH_KEEP=1 leaves the server's folder and log for inspection.
        if ProcessInfo.processInfo.environment["CLOUDWASTE_BENCH_KEEP"] != nil { try? postgres.stop() } else { postgres.destroy() }
    }

    private func keptRecords(prefix: String, partitions: [InputTopic: Int]) throws -> Int64 {
        let probe = try KafkaConsumer(config: KafkaConfig(["bootstrap.servers": broker.bootstrapServers, "group.id": "bench-probe"]),
                                      logger: Logger(label: "bench.probe"))
        defer { probe.close(timeoutMs: 1000) }
        var kept: Int64 = 0
        for (t, n) in partitions {
            for p in 0..<n {
                let (low, high) = try probe.queryWatermarks(TopicPartition(topic: t.name(prefix: prefix), partition: Int32(p)))
                kept += high - low
            }
        }
        return kept
    }

    func newDatabase() throws -> String {
        databases += 1
        let name = "bench_\(databases)"
        try PostgresConnection(connectionString: postgres.url()).query("CREATE DATABASE \(PostgresIdentifier(name))")
        return postgres.url(database: name)
    }

    /// librdkafka's consume rate of these records, tuned, decoding nothing.
    func kafkaLimit() throws -> Double {
        let consumer = try KafkaConsumer(config: KafkaConfig([
            "bootstrap.servers": broker.bootstrapServers, "group.id": "bench-raw-\(UUID().uuidString)",
            "fetch.max.bytes": "52428800", "max.partition.fetch.bytes": "10485760",
            "queued.min.messages": "1000000", "fetch.wait.max.ms": "100",
            // librdkafka 2.0 backs a partition off for a whole second once its local queue holds
            // this much: the daemon's memory-bounding default would make this limit a sleep.
            "queued.max.messages.kbytes": "1048576",
        ]), logger: Logger(label: "bench.kafka"), readsHeaders: false)  // the daemon's consumer skips headers too
        var offsets: [TopicPartition: Int64] = [:]
        for (t, n) in partitions { for p in 0..<n { offsets[TopicPartition(topic: t.name(prefix: "cloudwaste."), partition: Int32(p))] = KafkaOffset.beginning } }
        try consumer.assign(offsets)
        var count = 0
        var first: Date?
        while count < records {
            let batch = try consumer.poll(maxMessages: 10_000, timeoutMs: 5000)
            if batch.isEmpty { break }
            if first == nil { first = Date() }
            count += batch.count
        }
        consumer.close(timeoutMs: 1000)
        return Double(count) / max(1e-6, Date().timeIntervalSince(first ?? Date()))
    }

    /// How the PostgreSQL limit stores pseudonyms: as the product does (32-byte `bytea`, SPEC
    /// v1.2), or as before migration 8 (64 hex digits of `text COLLATE "C"`), so that the gain
    /// stays visible in every run.
    enum PseudonymShape: String, CaseIterable { case bytea, hex }

    struct PostgresLimit {
        /// New keys: what the daemon's rows are.
        var rowsPerSecond: Double
        /// The same rows upserted again, every one a conflict.
        var updatesPerSecond: Double
        /// Both passes together (rows of both over their time): the figure issue #20 compared.
        var bothPassesPerSecond: Double
        var postgresMicrosPerRow: Double
        /// Table and indexes after the run, per million rows.
        var mebibytesPerMillionRows: Double
        /// Hex rows only: migration 8 converting the table afterwards, seconds per million rows.
        var migrationSecondsPerMillionRows: Double?
    }

    /// PostgreSQL alone on every row the daemon wrote into `database`, table by table (each
    /// table's rows in batches of `batchSize`: binary COPY → temp staging → INSERT … ON CONFLICT
    /// on the table's key, into an empty copy with the same indexes): PostgreSQL's CPU per
    /// *record*, so that it compares like with like with the end-to-end figure, which counts
    /// every topic's rows, not only ml_training_data's. What the end-to-end run spends beyond it
    /// is the sink's own work: offsets, privacy locks, window state, recomputes, dead letters.
    func postgresLimitAllTables(database: String) throws -> Double {
        let db = try PostgresConnection(connectionString: database)
        let tables = StoredTable.all.filter { $0.retention != .kept && $0.storedAt == "ingested_at" }  // the records' own tables
        var work: [(table: StoredTable, batches: [[UInt8]])] = []
        for table in tables {
            let columns = table.columns.map(PostgresIdentifier.init)
            work.append((table, batched(try binaryTuples(db, "SELECT \(columns) FROM \(PostgresIdentifier(table.name))"))))
        }
        let schema = PostgresIdentifier("bench_all")
        try db.query("CREATE SCHEMA \(schema)")
        for (table, _) in work {
            try db.query("""
                CREATE TABLE \(schema.member(table.name)) (LIKE \(PostgresIdentifier(table.name)) INCLUDING ALL);
                CREATE TEMP TABLE \(PostgresIdentifier("all_stage_" + table.name)) (LIKE \(PostgresIdentifier(table.name))) ON COMMIT DELETE ROWS
                """)
        }
        try db.query("CHECKPOINT")
        let (cores, seconds) = try withPostgresCPU {
            for (table, batches) in work {
                let columns = table.columns.map(PostgresIdentifier.init)
                let stage = PostgresIdentifier("all_stage_" + table.name)
                let updates = PostgresQuery.joined(columns.filter { !table.key.contains($0.name) }.map { "\($0) = EXCLUDED.\($0)" })
                let upsert: PostgresQuery = """
                    INSERT INTO \(schema.member(table.name)) (\(columns)) SELECT \(columns) FROM \(stage)
                    ON CONFLICT (\(table.key.map(PostgresIdentifier.init))) DO UPDATE SET \(updates)
                    """
                for batch in batches {
                    try upsertBatch(db, copy: "COPY \(stage) (\(columns)) FROM STDIN (FORMAT binary)", batch: batch, upsert: upsert)
                }
            }
        }
        try db.query("DROP SCHEMA \(schema) CASCADE")
        return cores * seconds * 1e6 / Double(max(1, records))
    }

    /// Each row of `select` as a binary COPY tuple, as the daemon writes them (the header taken off
    /// the first message, the trailer dropped).
    private func binaryTuples(_ db: PostgresConnection, _ select: PostgresQuery) throws -> [[UInt8]] {
        var rows: [[UInt8]] = []
        try db.copyOut("COPY (\(select)) TO STDOUT (FORMAT binary)") {
            let tuple = rows.isEmpty ? Array($0.dropFirst(PostgresBinaryCopyEncoder.header.count)) : $0
            if tuple != PostgresBinaryCopyEncoder.trailer { rows.append(tuple) }
        }
        return rows
    }

    /// `rows` joined into COPY bodies of `batchSize` rows: in memory beforehand, so that only
    /// PostgreSQL is measured.
    private func batched(_ rows: [[UInt8]]) -> [[UInt8]] {
        stride(from: 0, to: rows.count, by: batchSize).map { rows[$0..<min($0 + batchSize, rows.count)].flatMap { $0 } }
    }

    /// One transaction of a limit: COPY `batch` into staging, then `upsert`.
    private func upsertBatch(_ db: PostgresConnection, copy: PostgresQuery, batch: [UInt8], upsert: PostgresQuery) throws {
        try db.query("BEGIN")
        try db.copyIn(copy, binaryTuples: batch[...])
        try db.query(upsert)
        try db.query("COMMIT")
    }

    /// Runs `body` while PostgreSQL's processes are sampled (/proc): the cores they kept busy, and
    /// the seconds it took.
    private func withPostgresCPU(_ body: () throws -> Void) throws -> (cores: Double, seconds: Double) {
        let postmaster = postgres.postmasterPID ?? 0
        let sampler = CPUSampler(interval: 0.1) { ["postgres": CPUSampler.processTree(postmaster)] }
        Thread.sleep(forTimeInterval: 0.2)
        let started = Date()
        try body()
        let ended = Date()
        Thread.sleep(forTimeInterval: 0.2)
        sampler.stop()
        return (sampler.utilization(from: started, to: ended)?.cores["postgres"] ?? 0, ended.timeIntervalSince(started))
    }

    /// PostgreSQL alone: the rows the daemon wrote into `database`'s ml_training_data, upserted
    /// into an empty table of the same shape and indexes, binary COPY → temp staging → INSERT … ON
    /// CONFLICT, `batchSize` rows per transaction, one connection, then upserted again (every row a
    /// conflict). The COPY data is in memory beforehand, so nothing but PostgreSQL is measured.
    /// Both pseudonym shapes are measured in `rounds` alternating rounds of this one run (bytea
    /// then hex, hex then bytea, …), each on a fresh table, and each figure is the best of its
    /// rounds, as issue #20 measured the gain: noise on this machine only ever slows a round
    /// down (PostgreSQL's CPU per row, sampled from /proc, is the median of the rounds: a sample
    /// can be off either way). The last hex table is then converted by migration 8 itself,
    /// timed: what an upgrade costs per million rows.
    func postgresLimits(database: String, rounds: Int = 3) throws -> [PseudonymShape: PostgresLimit] {
        let db = try PostgresConnection(connectionString: database)
        let columns = try db.query("""
            SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'ml_training_data'
             ORDER BY ordinal_position
            """).decodeRows(as: (String, String).self).map { (name: PostgresIdentifier($0), type: $1) }
        let pseudonyms = columns.filter { $0.type == "bytea" }.map(\.name)
        let updates = PostgresQuery.joined(columns.map(\.name).filter { $0.name != "scan_hash" && $0.name != "resource_hash" }
            .map { "\($0) = EXCLUDED.\($0)" })
        var batches: [PseudonymShape: [[UInt8]]] = [:]
        for shape in PseudonymShape.allCases {
            let selected = PostgresQuery.joined(columns.map { shape == .hex && pseudonyms.contains($0.name) ? "encode(\($0.name), 'hex')" : "\($0.name)" })
            batches[shape] = batched(try binaryTuples(db, "SELECT \(selected) FROM ml_training_data ORDER BY source_partition, source_offset"))
        }
        let n = Double(max(1, try db.query("SELECT count(*) FROM ml_training_data").decode(Int.self)))
        var inserts: [PseudonymShape: [Double]] = [:], conflicts: [PseudonymShape: [Double]] = [:], micros: [PseudonymShape: [Double]] = [:]
        var both: [PseudonymShape: [Double]] = [:], mebibytes: [PseudonymShape: Double] = [:], migration: Double?
        for round in 0..<rounds {
            for shape in round % 2 == 0 ? PseudonymShape.allCases : PseudonymShape.allCases.reversed() {
                let schema = "bench_\(shape.rawValue)"
                let table = PostgresIdentifier(schema).member("ml_training_data")
                let stage = PostgresIdentifier("bench_stage_\(shape.rawValue)")
                try db.query("CREATE SCHEMA \(PostgresIdentifier(schema)); CREATE TABLE \(table) (LIKE ml_training_data INCLUDING ALL)")
                if shape == .hex {
                    let toText = PostgresQuery.joined(pseudonyms.map {
                        "DROP CONSTRAINT \(PostgresIdentifier($0.name + "_is_pseudonym")), ALTER COLUMN \($0) TYPE text COLLATE \"C\""
                    })
                    try db.query("ALTER TABLE \(table) \(toText)")
                }
                try db.query("CREATE TEMP TABLE \(stage) (LIKE \(table)) ON COMMIT DELETE ROWS; CHECKPOINT")
                let upsert: PostgresQuery = "INSERT INTO \(table) SELECT * FROM \(stage) ON CONFLICT (scan_hash, resource_hash) DO UPDATE SET \(updates)"
                func pass() throws {
                    for batch in batches[shape]! { try upsertBatch(db, copy: "COPY \(stage) FROM STDIN (FORMAT binary)", batch: batch, upsert: upsert) }
                }
                let (cores, seconds) = try withPostgresCPU(pass)
                let bytes = try db.query("SELECT pg_total_relation_size(\(table.sql)::regclass)").decode(Int.self)
                // The same rows again: every one a conflict, updated in place (redelivery, a replay).
                let updateStarted = Date()
                try pass()
                let updateSeconds = Date().timeIntervalSince(updateStarted)
                if shape == .hex, round == rounds - 1, let toBytes = Migrator.migrations.first(where: { $0.version == 8 }) {
                    try db.query("CHECKPOINT")
                    let started = Date()
                    try db.transaction { try db.query(Migrator(schema: schema).sql(of: toBytes)) }
                    migration = Date().timeIntervalSince(started) * 1e6 / n
                }
                try db.query("DROP SCHEMA \(PostgresIdentifier(schema)) CASCADE; DROP TABLE \(stage)")
                inserts[shape, default: []].append(n / seconds)
                conflicts[shape, default: []].append(n / updateSeconds)
                both[shape, default: []].append(2 * n / (seconds + updateSeconds))
                micros[shape, default: []].append(cores * seconds * 1e6 / n)
                mebibytes[shape] = Double(bytes) / 1_048_576 * 1e6 / n
            }
        }
        return Dictionary(uniqueKeysWithValues: PseudonymShape.allCases.map { shape in
            (shape, PostgresLimit(rowsPerSecond: inserts[shape]!.max()!, updatesPerSecond: conflicts[shape]!.max()!,
                                  bothPassesPerSecond: both[shape]!.max()!,
                                  postgresMicrosPerRow: median(micros[shape]!), mebibytesPerMillionRows: mebibytes[shape]!,
                                  migrationSecondsPerMillionRows: shape == .hex ? migration : nil))
        })
    }

    struct Run {
        var rps: Double
        var peakRSSMB: Double
        var machineCPU: Double
        var cores: [String: Double]
        var database: String
        /// First record to last commit.
        var seconds: Double
        var records: Int
        /// Heap allocations of the daemon's whole run (with the counter preloaded), and the part of
        /// them made on librdkafka's threads.
        var allocations: Int?
        var librdkafkaAllocations: Int?
        var coresText: String { cores.keys.sorted().map { "\($0)=\(String(format: "%.2f", cores[$0]!))" }.joined(separator: " ") }

        /// CPU time of a group of processes per record, in µs.
        func microsPerRecord(_ group: String) -> Double { (cores[group] ?? 0) * seconds * 1e6 / Double(max(1, records)) }
        var allocationsPerRecord: Double? { allocations.map { Double($0) / Double(max(1, records)) } }
        /// Allocations per record on the daemon's own threads (consumer, preparation, writers, output).
        var ownAllocationsPerRecord: Double? {
            allocations.flatMap { all in librdkafkaAllocations.map { Double(all - $0) / Double(max(1, records)) } }
        }
        var perRecordText: String {
            "daemon_us_per_record=\(String(format: "%.1f", microsPerRecord("daemon"))) postgres_us_per_record=\(String(format: "%.1f", microsPerRecord("postgres")))"
                + (allocationsPerRecord.map { " allocations_per_record=\(String(format: "%.2f", $0))" } ?? "")
                + (ownAllocationsPerRecord.map { " own_allocations_per_record=\(String(format: "%.2f", $0))" } ?? "")
        }
    }

    /// The real daemon as a child process, from the earliest offsets, with the machine's CPU use
    /// sampled between its first consumed record and its last commit.
    func endToEnd(windows: Bool, tag: String, topicPrefix: String = "cloudwaste.", expected: Int? = nil) async throws -> Run {
        let url = try newDatabase()
        let output = directory.appendingPathComponent("daemon-\(tag).out")
        var env = ProcessInfo.processInfo.environment
        env["CLOUDWASTE_KAFKA_BOOTSTRAP"] = broker.bootstrapServers
        env["CLOUDWASTE_POSTGRES_URL"] = url
        env["CLOUDWASTE_GROUP_ID"] = "bench-\(tag)"
        env["CLOUDWASTE_HMAC_KEY"] = key.hex
        env["CLOUDWASTE_HTTP_PORT"] = "0"
        env["CLOUDWASTE_TOPIC_PREFIX"] = topicPrefix
        env["CLOUDWASTE_LOG_LEVEL"] = env["CLOUDWASTE_LOG_LEVEL"] ?? "warning"
        env["MALLOC_ARENA_MAX"] = env["MALLOC_ARENA_MAX"] ?? "2"
        // scripts/bench.sh builds the allocation counter; only the daemon runs with it.
        if let counter = env["CLOUDWASTE_MALLOC_COUNTER"] { env["LD_PRELOAD"] = counter }
        let configFile = directory.appendingPathComponent("bench-\(tag).toml")
        try "[windows]\nenabled = \(windows)\n[pipeline]\nbatch_max_records = \(batchSize)\nwriters = \(writers)\n"
            .write(to: configFile, atomically: true, encoding: .utf8)
        // CLOUDWASTE_BENCH_WRAPPER runs the daemon under a profiler, e.g. "perf record -g".
        let summaryFile = directory.appendingPathComponent("run-summary.json").path
        try? FileManager.default.removeItem(atPath: summaryFile)
        let daemon = [selfExecutable(), "run", "--until-idle", "3", "--config", configFile.path, "--summary-file", summaryFile]
        let wrapper = env["CLOUDWASTE_BENCH_WRAPPER"].map { $0.split(separator: " ").map(String.init) } ?? []
        let command = wrapper.isEmpty ? daemon : ["/usr/bin/env"] + wrapper + daemon
        let child = try await ChildProcess.start(command[0], Array(command.dropFirst()), environment: env, output: .file(output.path))
        let postmaster = postgres.postmasterPID ?? 0
        let brokerPID = broker.process.pid
        let sampler = CPUSampler { ["daemon": [child.pid], "postgres": CPUSampler.processTree(postmaster), "mock-broker": [brokerPID]] }
        let status = try await child.exit()
        sampler.stop()
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        let summary: RunSummary
        do {
            guard status == 0 else { throw RuntimeFailure("exit \(status)") }
            summary = try RunSummary.read(from: summaryFile)
        } catch {
            throw RuntimeFailure("benchmark daemon failed (\(error)): \(text.suffix(500))")
        }
        guard summary.records == expected ?? records else {
            throw RuntimeFailure("daemon committed \(summary.records) of \(expected ?? records) records")
        }
        let from = Date(timeIntervalSince1970: summary.firstRecordUnix)
        let to = Date(timeIntervalSince1970: summary.lastCommitUnix)
        let use = sampler.utilization(from: from, to: to)
        return Run(rps: summary.recordsPerSecond, peakRSSMB: Double(summary.peakRSSMB),
                   machineCPU: use?.machine ?? 0, cores: use?.cores ?? [:], database: url,
                   seconds: to.timeIntervalSince(from), records: expected ?? records, allocations: summary.allocations,
                   librdkafkaAllocations: summary.librdkafkaAllocations)
    }

    /// Peak RSS of the daemon reading `largeRecords` metric-samples records of 10,000 points each.
    func largeRecordsRSS() async throws -> Double {
        try LocalEnvironment.publish(large, bootstrap: broker.bootstrapServers, topicPrefix: Self.largePrefix, layout: largeLayout)
        let kept = try keptRecords(prefix: Self.largePrefix, partitions: largeLayout.partitions)
        guard kept == Int64(large.count) else { throw RuntimeFailure("the mock broker kept \(kept) of \(large.count) large records") }
        print("large records: \(large.count) × \(large.first.map { $0.value.count / 1024 } ?? 0) KiB")
        return try await endToEnd(windows: true, tag: "large", topicPrefix: Self.largePrefix, expected: large.count).peakRSSMB
    }

    /// The plain Python consumer of the issue (confluent-kafka + psycopg: JSON, HMACs, COPY →
    /// staging upsert, offsets in the same transaction) on the same records.
    func pythonConsumer(tag: String) async throws -> (rps: Double, microsPerRecord: Double) {
        let url = try newDatabase()
        let output = directory.appendingPathComponent("python-\(tag).out")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/bench-python-consumer.py").path
        let status = try await ChildProcess.run("/usr/bin/env", ["python3", script, "--bootstrap", broker.bootstrapServers, "--dsn", url,
                                                                 "--records", String(records), "--key", key.hex, "--group", "bench-\(tag)"],
                                                output: .file(output.path))
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        // The last `python: key=value …` line's numeric fields.
        let line = text.split(separator: "\n").last(where: { $0.hasPrefix("python: ") }) ?? ""
        let fields = Dictionary(line.split(separator: " ").compactMap { field -> (Substring, Double)? in
            guard let eq = field.firstIndex(of: "="), let value = Double(field[field.index(after: eq)...]) else { return nil }
            return (field[..<eq], value)
        }, uniquingKeysWith: { $1 })
        guard status == 0, let rps = fields["rps"], let cpu = fields["cpu_us_per_record"] else {
            throw RuntimeFailure("python consumer failed (exit \(status)): \(text.suffix(500))")
        }
        return (rps, cpu)
    }

    /// Produce→visible latency at a paced rate: the time between the k-th record being sent and
    /// the k-th record being committed (an order-statistics estimate: batches of different writers
    /// commit in any order).
    func latency(rate: Double, seconds: Int) throws -> (p50: Double, p99: Double) {
        let url = try newDatabase()
        var config = StreamConfig()
        config.kafkaBootstrapServers = broker.bootstrapServers
        config.postgresURL = url
        config.groupId = "bench-latency"
        config.httpPort = 0
        config.writers = writers
        config.kafkaProperties["auto.offset.reset"] = "latest"
        var logger = Logger(label: "bench.latency")
        logger.logLevel = .warning
        let pipeline = StreamPipeline(config: config, key: key, regions: try RegionTable.load(path: nil), logger: logger)
        try pipeline.start()
        defer { pipeline.requestStop(); pipeline.waitUntilFinished() }
        let deadline = Date(timeIntervalSinceNow: 30)
        while pipeline.status.assignedPartitions == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        Thread.sleep(forTimeInterval: 1)
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": broker.bootstrapServers, "linger.ms": "1"]), logger: Logger(label: "bench.producer"))
        // Warm-up: the producer's first sends wait for its connections and topic metadata, and each
        // writer's first batch creates its session's staging tables; neither is steady-state
        // latency, so a few records go through before the clock starts.
        let warmUp = min(1000, messages.count)
        let total = Int(rate * Double(seconds))
        // Records never seen before: sent twice, a detection would take the duplicate path
        // (the staging upsert), which is not what a first delivery costs.
        let paced = warmUp + total <= messages.count ? messages
            : messages + TrafficGenerator(seed: 2, badRecordShare: 0.005).messages(count: warmUp + total - messages.count)
        let before = pipeline.status.recordsCommitted
        for m in paced.prefix(warmUp) { try producer.send(topic: m.topic.name(prefix: "cloudwaste."), key: Array(m.key.utf8), value: m.value) }
        let warmDeadline = Date(timeIntervalSinceNow: 30)
        while pipeline.status.recordsCommitted - before < warmUp && Date() < warmDeadline {
            producer.poll()
            Thread.sleep(forTimeInterval: 0.01)
        }
        Thread.sleep(forTimeInterval: 0.5)
        let pacedStart = pipeline.status
        let base = pacedStart.recordsCommitted
        var sentAt: [Date] = []
        sentAt.reserveCapacity(total)
        var visibleAt: [Date] = []
        let start = Date()
        var next = 0
        while next < total {
            let due = Int(Date().timeIntervalSince(start) * rate)
            while next < min(due, total) {
                let m = paced[warmUp + next]
                try producer.send(topic: m.topic.name(prefix: "cloudwaste."), key: Array(m.key.utf8), value: m.value)
                sentAt.append(Date())
                next += 1
            }
            producer.poll()
            let committed = pipeline.status.recordsCommitted - base
            while visibleAt.count < min(committed, sentAt.count) { visibleAt.append(Date()) }
            Thread.sleep(forTimeInterval: 0.001)
        }
        let end = Date(timeIntervalSinceNow: 30)
        while visibleAt.count < total && Date() < end {
            let committed = pipeline.status.recordsCommitted - base
            while visibleAt.count < min(committed, total) { visibleAt.append(Date()) }
            Thread.sleep(forTimeInterval: 0.001)
        }
        let paired = zip(sentAt, visibleAt).map { (sent: $0.timeIntervalSince(start), ms: $1.timeIntervalSince($0) * 1000) }
        // Where in the paced run the slow records were sent: a steady queue and a one-off stall
        // (a checkpoint, a rebalance) give the same p99 but different causes.
        var worstPerSecond = [Double](repeating: 0, count: seconds)
        for p in paired {
            let second = min(seconds - 1, max(0, Int(p.sent)))
            worstPerSecond[second] = max(worstPerSecond[second], p.ms)
        }
        let after = pipeline.status
        let stages = after.stageSeconds.merging(pacedStart.stageSeconds.mapValues { -$0 }, uniquingKeysWith: +)
        let batches = max(1, after.batchesCommitted - pacedStart.batchesCommitted)
        let writerSeconds = ["offsets", "privacy", "copy", "upsert_commit"].reduce(0.0) { $0 + (stages[$1] ?? 0) }
        let writerCapacity = Double(max(1, after.writers.count)) * Date().timeIntervalSince(start)
        print("latency: \(batches) batches of \((after.recordsCommitted - pacedStart.recordsCommitted) / batches) records on average, "
              + "\(Int(writerSeconds * 1000 / Double(batches))) ms each in PostgreSQL; writers busy \(Int(100 * writerSeconds / writerCapacity))%")
        print("latency: stages " + stages.keys.sorted().map { "\($0)=\(String(format: "%.2f", stages[$0]!))" }.joined(separator: " "))
        print("latency: slowest produce→visible (ms) of the records sent in each second: "
              + worstPerSecond.map { String(Int($0)) }.joined(separator: " "))
        let latencies = paired.map(\.ms).sorted()
        guard !latencies.isEmpty else { return (0, 0) }
        return (latencies[latencies.count / 2], latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))])
    }
}

/// This executable's absolute path (for the child daemon and the mock broker).
func selfExecutable() -> String {
    let path = CommandLine.arguments[0]
    if path.hasPrefix("/") { return path }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path).standardizedFileURL.path
}

/// `cloudwaste-stream bench-decode`: the consumer side's work per record alone (decode, validate,
/// anonymize, encode, batch) on generated records, on one thread, for profiling (e.g. under
/// valgrind --tool=callgrind). With the allocation counter preloaded (scripts/bench.sh builds it)
/// it also prints heap allocations per record of the steady state (after a warm-up pass).
struct BenchDecodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-decode", abstract: "Measure decoding, anonymization and encoding alone.")
    @Option(help: "Records to generate.") var records = 200_000
    @Option(help: "Times to repeat the measured pass (more for a profile of the steady state).") var passes = 1
    @Option(help: ArgumentHelp("Also write the generated values to this file (each a 4-byte little-endian length, then the bytes), "
                               + "for an outside reference decoder (scripts/tools/simdjson-reference.cpp).", valueName: "path"))
    var writeValues: String?

    func validate() throws {
        guard records >= 1, passes >= 1 else { throw ValidationError("--records and --passes must be at least 1") }
    }

    func run() async throws {
        try await withExitCodes {
            let messages = TrafficGenerator(seed: 1, badRecordShare: 0.005).messages(count: records).enumerated()
                .map { KafkaMessage(topic: $1.topic.name(prefix: "cloudwaste."), partition: 0, offset: Int64($0), key: Array($1.key.utf8), value: $1.value) }
            if let writeValues { try Self.writeValues(messages.compactMap(\.value), to: writeValues) }
            let topicNames = Dictionary(uniqueKeysWithValues: InputTopic.allCases.map { ($0.name(prefix: "cloudwaste."), $0) })
            let builder = BatchBuilder(decoder: RecordDecoder(), anonymizer: Anonymizer(key: HMACKey.generate(), regions: try RegionTable.load(path: nil)),
                                       topicNames: topicNames)
            func pass() {
                for m in messages {
                    builder.add(m, generation: 1, expected: .uncommitted)
                    if builder.count >= 5000 { _ = builder.seal() }
                }
                _ = builder.seal()
            }
            pass()  // warm-up: buffers, interned strings and caches reach their steady size
            let allocationsBefore = HeapAllocations.count
            let started = Date()
            for _ in 0..<passes { pass() }
            let seconds = Date().timeIntervalSince(started) / Double(passes)
            let allocations = HeapAllocations.count.flatMap { after in allocationsBefore.map { (after - $0) / passes } }
            let lookups = builder.preparer.anonymizer.pseudonymizer.cacheLookups
            // The same work split by stage (each stage includes the ones before it). Decoding hashes
            // the ids from the message's bytes, as the pipeline does; the anonymizer does the rest.
            let decoder = RecordDecoder()
            let anonymizer = Anonymizer(key: HMACKey.generate(), regions: try RegionTable.load(path: nil))
            var tape = JSONTape()
            var t = Date()
            for m in messages { m.value?.withUnsafeBufferPointer { _ = try? tape.parse($0) } }
            let parseSeconds = Date().timeIntervalSince(t)
            t = Date()
            var decoded: [InputRecord] = []
            decoded.reserveCapacity(messages.count)
            for m in messages {
                if let r = try? m.value?.withUnsafeBufferPointer({ (b) throws(RecordRejection) in try decoder.decode(topicNames[m.topic]!, b, tape: &tape, pseudonymizer: anonymizer.pseudonymizer) }) {
                    decoded.append(r)
                }
            }
            let decodeSeconds = Date().timeIntervalSince(t)
            t = Date()
            for r in decoded { _ = anonymizer.anonymize(r) }
            let anonymizeSeconds = Date().timeIntervalSince(t)
            let p = Pseudonymizer(key: HMACKey.generate())
            let ids = (0..<records).map { "arn:aws:ec2:us-east-1:123456789012:volume/vol-\($0)" }
            t = Date()
            for id in ids { _ = p.pseudonym(.resource, id) }
            let hmacSeconds = Date().timeIntervalSince(t)
            let us = { (s: Double) in String(format: "%.2f", s * 1e6 / Double(records)) }
            print("per record (µs): json_parse=\(us(parseSeconds)) decode_validate_pseudonymize=\(us(decodeSeconds)) anonymize_rest=\(us(anonymizeSeconds)) one_pseudonym=\(us(hmacSeconds))")
            print("bench-decode: records=\(records) seconds=\(String(format: "%.3f", seconds)) rps=\(Int(Double(records) / seconds)) us_per_record=\(String(format: "%.2f", seconds * 1e6 / Double(records)))"
                  + (allocations.map { " allocations_per_record=\(String(format: "%.2f", Double($0) / Double(records)))" } ?? "")
                  + " id_cache_hit_rate=\(String(format: "%.3f", Double(lookups.hits) / Double(max(1, lookups.hits + lookups.misses))))")
        }
    }

    static func writeValues(_ values: [[UInt8]], to path: String) throws {
        var bytes: [UInt8] = []
        for value in values {
            withUnsafeBytes(of: UInt32(value.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: value)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}
