import CloudWasteStream
public import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// CPU use from /proc, sampled in the background: the machine's busy share and the cores used by
/// groups of processes (the daemon, PostgreSQL and its backends, the mock broker). A stage timer
/// inside a program cannot show time spent waiting; this shows who kept the cores busy.
public final class CPUSampler: Sendable {
    public struct Sample: Sendable {
        public var at: Date
        /// Busy and total jiffies of the whole machine (/proc/stat, idle and iowait count as idle).
        public var busy: UInt64
        public var total: UInt64
        /// utime + stime jiffies per group, per process.
        public var groups: [String: [pid_t: UInt64]]
    }

    private let samples = Mutex<[Sample]>([])
    private let stopped = Atomic<Bool>(false)
    private let groups: @Sendable () -> [String: [pid_t]]
    private let done = DispatchSemaphore(value: 0)

    /// `groups` is asked at every sample (backends come and go).
    public init(interval: Double = 0.25, groups: @escaping @Sendable () -> [String: [pid_t]]) {
        self.groups = groups
        DedicatedThread.start(name: "cpu-sampler") { [self] in
            while !stopped.load(ordering: .relaxed) {
                let s = Self.sample(groups())
                samples.withLock { $0.append(s) }
                Thread.sleep(forTimeInterval: interval)
            }
            done.signal()
        }
    }

    public func stop() {
        stopped.store(true, ordering: .relaxed)
        done.wait()
    }

    public struct Utilization: Sendable {
        /// 0…1 of all cores.
        public var machine: Double
        /// Cores used per group (1.0 = one core fully busy).
        public var cores: [String: Double]
    }

    /// Use between the samples nearest to `from` and `to`.
    public func utilization(from: Date, to: Date) -> Utilization? {
        let all = samples.withLock { $0 }
        guard let first = all.last(where: { $0.at <= from }) ?? all.first,
              let last = all.first(where: { $0.at >= to }) ?? all.last, last.at > first.at else { return nil }
        let machine = last.total > first.total ? Double(last.busy - first.busy) / Double(last.total - first.total) : 0
        let seconds = last.at.timeIntervalSince(first.at)
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        var cores: [String: Double] = [:]
        for (group, pids) in last.groups {
            var ticks: UInt64 = 0
            for (pid, t) in pids { ticks += t - min(t, first.groups[group]?[pid] ?? 0) }
            cores[group] = Double(ticks) / hz / seconds
        }
        return Utilization(machine: machine, cores: cores)
    }

    static func sample(_ groups: [String: [pid_t]]) -> Sample {
        var busy: UInt64 = 0
        var total: UInt64 = 0
        if let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) {
            let v = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
            total = v.prefix(8).reduce(0, +)  // user nice system idle iowait irq softirq steal
            busy = total - (v.count > 4 ? v[3] + v[4] : 0)
        }
        var out: [String: [pid_t: UInt64]] = [:]
        for (group, pids) in groups {
            var ticks: [pid_t: UInt64] = [:]
            for pid in pids { if let t = processTicks(pid) { ticks[pid] = t } }
            out[group] = ticks
        }
        return Sample(at: Date(), busy: busy, total: total, groups: out)
    }

    /// utime + stime of a process in jiffies.
    public static func processTicks(_ pid: pid_t) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state(0) ppid(1) … utime(11) stime(12).
        guard fields.count > 12, let u = UInt64(fields[11]), let s = UInt64(fields[12]) else { return nil }
        return u + s
    }

    /// `parent` and its children (PostgreSQL's postmaster and backends).
    public static func processTree(_ parent: pid_t) -> [pid_t] {
        var out = [parent]
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return out }
        for e in entries {
            guard let pid = pid_t(e), let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = text.lastIndex(of: ")") else { continue }
            let fields = text[text.index(after: close)...].split(separator: " ")
            if fields.count > 1, pid_t(fields[1]) == parent { out.append(pid) }
        }
        return out
    }
}
