public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawn: the scratch PostgreSQL's tools, the benchmark's
/// daemon and mock broker. Output goes to a file (a server started by pg_ctl inherits the
/// descriptors and would hold a pipe open forever); stdin is /dev/null.
public final class ChildProcess: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let pid: pid_t
    public let command: String

    private init(pid: pid_t, command: String) {
        self.pid = pid
        self.command = command
    }

    /// Starts `executable` (an absolute path) with `arguments`; stdout and stderr go to
    /// `outputPath` (truncated) or are discarded.
    public static func spawn(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                             outputPath: String? = nil) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let env = environment ?? ProcessInfo.processInfo.environment
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard rc == 0 else {
            throw Failure(description: "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        return ChildProcess(pid: pid, command: ([executable] + arguments).joined(separator: " "))
    }

    /// Runs to completion; returns the exit status (128 + signal when killed).
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           outputPath: String? = nil) throws -> Int32 {
        try spawn(executable, arguments, environment: environment, outputPath: outputPath).wait().status
    }

    /// Waits for the exit; `maxRSSKB` is the kernel's ru_maxrss (an upper bound after a
    /// vfork-style spawn: it starts from the parent's peak).
    @discardableResult
    public func wait() -> (status: Int32, maxRSSKB: Int) {
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) == -1 && errno == EINTR {}
        let code: Int32 = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, usage.ru_maxrss)
    }

    public func signal(_ signal: Int32) { kill(pid, signal) }
}
