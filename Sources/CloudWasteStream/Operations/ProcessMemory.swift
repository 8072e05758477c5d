import Foundation

/// This process's resident memory from /proc/self/status. `getrusage`'s ru_maxrss is not used:
/// for a process started by posix_spawn (vfork semantics) it starts from the parent's peak, which
/// made the benchmark report the parent's memory instead of the daemon's.
public enum ProcessMemory {
    /// Current resident set size in bytes (VmRSS), nil where /proc is unavailable.
    public static var residentBytes: Int? { field("VmRSS:") }

    /// Peak resident set size in bytes since exec (VmHWM).
    public static var peakResidentBytes: Int? { field("VmHWM:") }

    private static func field(_ name: String) -> Int? {
        // /proc files report size 0: read until end of file rather than by size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/status") else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.readToEnd() else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let kb = line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
            return kb.map { $0 * 1024 }
        }
        return nil
    }
}
