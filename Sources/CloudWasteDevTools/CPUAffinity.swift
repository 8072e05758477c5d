/// Pins processes to CPUs for the benchmark's pinned set-up (PostgreSQL on a core of its own, as
/// on a machine of its own), through util-linux's `taskset`, every thread of each process.
public enum CPUAffinity {
    /// `cpus` as taskset reads it: "0", "1-3".
    public static func set(pids: [Int32], cpus: String) async throws {
        for pid in pids {
            let status = try await ChildProcess.run("/usr/bin/taskset", ["-a", "-p", "-c", cpus, String(pid)], output: .discarded)
            guard status == 0 else { throw CPUAffinityError(message: "taskset -a -p -c \(cpus) \(pid) exited with \(status)") }
        }
    }
}

public struct CPUAffinityError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
