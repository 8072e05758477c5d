import Foundation

/// The CPUs this process may really use: the fewest of the machine's online CPUs, the process's
/// affinity mask (`taskset`, a container's cpuset) and its cgroup CPU quota (`cpu.max`, a
/// container's CPU limit, rounded up). The threads that only compute (record preparation) are
/// sized by it: pinned to one CPU, two busy threads would only take turns and pay for the
/// switches. Writers are not: they mostly wait for PostgreSQL.
public enum UsableCPUs {
    public static let count: Int = {
        var n = ProcessInfo.processInfo.activeProcessorCount
        if let affinity = affinityCount() { n = min(n, affinity) }
        if let quota = cgroupQuota() { n = min(n, quota) }
        return max(1, n)
    }()

    /// The CPUs of this process's affinity mask, from `Cpus_allowed_list` in /proc/self/status
    /// (glibc's sched_getaffinity is not visible to Swift without _GNU_SOURCE).
    static func affinityCount() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else { return nil }
        return cpuCount(fromList: String(line.dropFirst("Cpus_allowed_list:".count)))
    }

    /// "0-3,6,8-9" → 7.
    static func cpuCount(fromList list: String) -> Int? {
        var n = 0
        for part in list.split(separator: ",") {
            let bounds = part.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "-").map { Int($0) }
            switch bounds.count {
            case 1: guard bounds[0] != nil else { return nil }; n += 1
            case 2: guard let a = bounds[0], let b = bounds[1], b >= a else { return nil }; n += b - a + 1
            default: return nil
            }
        }
        return n > 0 ? n : nil
    }

    /// cgroup v2's `cpu.max` ("max 100000" or "QUOTA PERIOD"), as whole CPUs rounded up.
    static func cgroupQuota(path: String = "/sys/fs/cgroup/cpu.max") -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return quota(fromCPUMax: text)
    }

    static func quota(fromCPUMax text: String) -> Int? {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, let quota = Double(parts[0]), let period = Double(parts[1]), period > 0 else { return nil }
        return max(1, Int((quota / period).rounded(.up)))
    }
}
