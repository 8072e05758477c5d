import Foundation
import Subprocess
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A child process on swift-subprocess: the scratch PostgreSQL's tools, the benchmark's daemon,
/// Python consumer and mock broker, and the tests' daemons.
///
/// swift-subprocess ties a child's life to a closure. Several children here outlive any one
/// scope (a daemon killed at a random moment while the test goes on, two daemons side by side,
/// the broker for a whole benchmark), so `start` runs that closure in a task of its own and hands
/// back the process id at once; `exit` awaits the termination status. Output goes to a file, not
/// a pipe: a server started by pg_ctl inherits the descriptor and would hold a pipe open forever,
/// and a pipe that nobody reads stops a chatty child. Standard input is /dev/null.
public final class ChildProcess: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let pid: Int32  // pid_t
    public let command: String
    private let termination: Task<Int32, any Error>
    private let ended: Ended

    /// Set once swift-subprocess has reaped the child (a Task cannot be asked whether it ended).
    private final class Ended: Sendable {
        let flag = Atomic<Bool>(false)
    }

    private init(pid: Int32, command: String, termination: Task<Int32, any Error>, ended: Ended) {
        self.pid = pid
        self.command = command
        self.termination = termination
        self.ended = ended
    }

    /// Where a child's stdout or stderr goes.
    public enum Destination: Sendable {
        case discarded
        /// A file, truncated first.
        case file(String)
        /// This process's own stream.
        case inherited
    }

    /// Starts `executable` (an absolute path) with `arguments` and returns once it runs; stderr
    /// goes along with stdout unless `error` says otherwise. `environment` replaces the inherited
    /// one when given.
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                             workingDirectory: String? = nil, output: Destination = .discarded,
                             error: Destination? = nil) async throws -> ChildProcess {
        let configuration = Configuration(executable: .path(FilePath(executable)), arguments: Arguments(arguments),
                                          environment: Self.environment(environment),
                                          workingDirectory: workingDirectory.map { FilePath($0) })
        let command = ([executable] + arguments).joined(separator: " ")
        let stdout = try Self.open(output, inherited: .standardOutput)
        guard let error else { return try await start(configuration, command, output: stdout.output, error: .combinedWithOutput) }
        let stderr: (output: FileDescriptorOutput, owned: FileDescriptor?)
        do { stderr = try Self.open(error, inherited: .standardError) } catch {
            try? stdout.owned?.close()
            throw error
        }
        return try await start(configuration, command, output: stdout.output, error: stderr.output)
    }

    private static func start<Error: ErrorOutputProtocol>(_ configuration: Configuration, _ command: String, output: FileDescriptorOutput,
                                                           error: Error) async throws -> ChildProcess {
        let (started, announce) = AsyncThrowingStream<pid_t, any Swift.Error>.makeStream()
        let ended = Ended()
        let termination = Task<Int32, any Swift.Error> {
            defer { ended.flag.store(true, ordering: .releasing) }
            do {
                let result = try await Subprocess.run(configuration, input: .none, output: output,
                                                      error: error) { execution in
                    announce.yield(execution.processIdentifier.value)
                    announce.finish()
                }
                return Self.exitCode(result.terminationStatus)
            } catch {
                announce.finish(throwing: Failure(description: "cannot start \(command): \(error)"))
                throw error
            }
        }
        for try await pid in started { return ChildProcess(pid: pid, command: command, termination: termination, ended: ended) }
        throw Failure(description: "cannot start \(command)")
    }

    /// The descriptor for `destination`, and the one opened for it (closed once the child runs).
    private static func open(_ destination: Destination, inherited: FileDescriptor) throws -> (output: FileDescriptorOutput, owned: FileDescriptor?) {
        let path: String
        switch destination {
        case .inherited: return (.fileDescriptor(inherited, closeAfterSpawningProcess: false), nil)
        case .discarded: path = "/dev/null"
        case .file(let file): path = file
        }
        let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate],
                                         permissions: [.ownerReadWrite, .groupRead, .otherRead])
        return (.fileDescriptor(fd, closeAfterSpawningProcess: true), fd)
    }

    /// Runs to completion; returns the exit status (128 + signal when killed).
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           workingDirectory: String? = nil, output: Destination = .discarded, error: Destination? = nil) async throws -> Int32 {
        try await start(executable, arguments, environment: environment, workingDirectory: workingDirectory,
                        output: output, error: error).exit()
    }

    /// Waits for the exit; returns the exit status (128 + signal when killed). A child still
    /// running after `seconds` is killed and reported as a failure with its command line, so a
    /// hung child fails its caller instead of hanging it.
    @discardableResult
    public func exit(within seconds: Double? = nil) async throws -> Int32 {
        guard let seconds else { return try await termination.value }
        let deadline = ContinuousClock.now + .seconds(seconds)
        while isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        guard isRunning else { return try await termination.value }
        signal(SIGKILL)
        _ = try? await termination.value
        throw Failure(description: "\(command) still running after \(Int(seconds)) s: killed")
    }

    /// True until swift-subprocess has seen the child end.
    public var isRunning: Bool { !ended.flag.load(ordering: .acquiring) }

    /// Sends `signal` while the child runs (never to a reaped pid, which the system may reuse).
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    private static func environment(_ values: [String: String]?) -> Subprocess.Environment {
        guard let values else { return .inherit }
        return .custom(Dictionary(uniqueKeysWithValues: values.compactMap { key, value in
            Subprocess.Environment.Key(rawValue: key).map { ($0, value) }
        }))
    }

    private static func exitCode(_ status: TerminationStatus) -> Int32 {
        switch status {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }
}
