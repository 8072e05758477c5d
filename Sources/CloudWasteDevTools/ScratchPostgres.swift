public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A throw-away PostgreSQL server (Debian's initdb/pg_ctl) in a state folder, for the demo, the
/// benchmark and the tests. Started as the `postgres` user when we run as root, on a free port,
/// listening on loopback and a private socket folder only.
public final class ScratchPostgres: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let directory: URL
    public let port: Int
    public let durable: Bool
    private let binDirectory: URL

    public var dataDirectory: URL { directory.appendingPathComponent("data") }
    public var socketDirectory: URL { directory.appendingPathComponent("sock") }
    public var logFile: URL { directory.appendingPathComponent("postgres.log") }

    /// `durable: false` turns fsync off: fine for tests; the benchmark keeps it on.
    public init(directory: URL, port: Int? = nil, durable: Bool = true) throws {
        self.directory = directory
        self.durable = durable
        guard let bin = Self.findBinDirectory() else {
            throw Failure(description: "PostgreSQL server binaries not found under /usr/lib/postgresql: install Debian's postgresql package (apt-get install postgresql)")
        }
        binDirectory = bin
        self.port = try port ?? Self.freePort()
    }

    /// libpq URI for a database on this server.
    public func url(database: String = "postgres") -> String {
        "postgresql://postgres@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    public func start() async throws {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        try fm.createDirectory(at: socketDirectory, withIntermediateDirectories: true)
        let runAsPostgres = geteuid() == 0
        if runAsPostgres {
            try await run("/bin/chown", ["-R", "postgres:postgres", directory.path])
        }
        if !fm.fileExists(atPath: dataDirectory.appendingPathComponent("PG_VERSION").path) {
            try fm.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
            if runAsPostgres { try await run("/bin/chown", ["-R", "postgres:postgres", directory.path]) }
            try await runPostgresTool("initdb", ["-D", dataDirectory.path, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions", "-N"])
        }
        var options = "-p \(port) -k \(socketDirectory.path) -c listen_addresses=127.0.0.1 -c max_connections=100 -c shared_buffers=256MB"
        // Checkpoints by time, as a write-heavy server is set up: with the default max_wal_size
        // (1 GB) a backlog forced one every 8–20 s, and after each the first change to every page
        // of the randomly keyed window state and indexes logs the whole page (docs/performance.md).
        options += " -c max_wal_size=8GB -c checkpoint_timeout=30min"
        if !durable { options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off" }
        // Extra server settings for investigations, e.g. "-c log_min_duration_statement=20".
        if let extra = ProcessInfo.processInfo.environment["CLOUDWASTE_SCRATCH_PG_OPTIONS"] { options += " " + extra }
        try await runPostgresTool("pg_ctl", ["-D", dataDirectory.path, "-o", options, "-l", logFile.path, "-w", "-t", "60", "start"])
    }

    /// Stops the server; `immediate` simulates a crash (no checkpoint). This is what `pg_ctl stop`
    /// does (SIGINT for a fast shutdown, SIGQUIT for an immediate one, then wait for the
    /// postmaster to end), done here without a child process so that it also works from `defer`
    /// and `atexit`.
    public func stop(immediate: Bool = false) throws {
        guard let pid = postmasterPID else { return }
        kill(pid, immediate ? SIGQUIT : SIGINT)
        guard Self.waitForExit(of: pid, pidFile: pidFile, seconds: 60) else {
            throw Failure(description: "PostgreSQL (pid \(pid)) did not stop within 60 s — see \(logFile.path)")
        }
    }

    /// A hot standby of this server in `directory`, streaming its WAL asynchronously (the default
    /// replication of a primary/standby pair): a base backup (`pg_basebackup -R`), started on a
    /// port of its own. For failover tests.
    public func makeStandby(directory: URL) async throws -> ScratchPostgres {
        let standby = try ScratchPostgres(directory: directory, durable: durable)
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        if geteuid() == 0 { try await run("/bin/chown", ["-R", "postgres:postgres", directory.path]) }
        try await runPostgresTool("pg_basebackup", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres",
                                                    "-D", standby.dataDirectory.path, "-R", "-X", "stream", "-c", "fast"])
        try await standby.start()
        return standby
    }

    /// Turns a standby into a primary (`pg_ctl promote`, waiting until it accepts writes).
    public func promote() async throws {
        try await runPostgresTool("pg_ctl", ["-D", dataDirectory.path, "-w", "-t", "60", "promote"])
    }

    /// Stops the server and deletes its folder.
    public func destroy() {
        try? stop()
        try? FileManager.default.removeItem(at: directory)
    }

    private func runPostgresTool(_ tool: String, _ arguments: [String]) async throws {
        let path = binDirectory.appendingPathComponent(tool).path
        if geteuid() == 0 {
            try await run("/usr/sbin/runuser", ["-u", "postgres", "--", path] + arguments)
        } else {
            try await run(path, arguments)
        }
    }

    private func run(_ executable: String, _ arguments: [String]) async throws {
        let outputFile = directory.appendingPathComponent("tool-output.txt")
        let status = try await ChildProcess.run(executable, arguments, output: .file(outputFile.path))
        if status != 0 {
            let data = FileManager.default.contents(atPath: outputFile.path) ?? Data()
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(description: "\(URL(fileURLWithPath: executable).lastPathComponent) \(arguments.first ?? "") failed (exit \(status)): \(text.suffix(600)) — see \(logFile.path)")
        }
    }

    static func findBinDirectory() -> URL? {
        let root = URL(fileURLWithPath: "/usr/lib/postgresql")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let bin = root.appendingPathComponent(version).appendingPathComponent("bin")
            if FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("pg_ctl").path) {
                return bin
            }
        }
        return nil
    }

    /// A TCP port that was free a moment ago on loopback.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw Failure(description: "bind() failed: errno \(errno)") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

extension ScratchPostgres {
    /// The postmaster's process id while the server runs (its backends are its children).
    public var postmasterPID: pid_t? { Self.pid(in: pidFile) }

    private var pidFile: URL { dataDirectory.appendingPathComponent("postmaster.pid") }

    /// The pid in a postmaster.pid file, if that process is a running postgres (a file left by a
    /// crash can name a pid the system has given to another process since).
    private static func pid(in pidFile: URL) -> pid_t? {
        guard let text = try? String(contentsOf: pidFile, encoding: .utf8),
              let pid = text.split(separator: "\n").first.flatMap({ pid_t($0) }),
              let name = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
              name.hasPrefix("postgres") else { return nil }
        return pid
    }

    /// True once the postmaster has removed its pid file or is gone. It is not our child (pg_ctl
    /// detaches it), so it is polled rather than waited for.
    private static func waitForExit(of pid: pid_t, pidFile: URL, seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if kill(pid, 0) != 0 || Self.pid(in: pidFile) != pid { return true }
            usleep(20_000)
        }
        return false
    }

    /// Stops a server that an interrupted earlier run left in `directory` (its postmaster.pid).
    public static func stopLeftover(in directory: URL) {
        let pidFile = directory.appendingPathComponent("data/postmaster.pid")
        guard let pid = pid(in: pidFile) else { return }
        kill(pid, SIGQUIT)
        _ = waitForExit(of: pid, pidFile: pidFile, seconds: 5)
    }
}
