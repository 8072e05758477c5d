import Glibc

/// Keeps freed heap memory in the process for the next batch instead of handing it back to the
/// kernel. A batch's buffers are megabytes (encoded rows, items, window rows); glibc serves
/// blocks that large with `mmap`, or trims them off the top of the heap when they are freed, so
/// every batch mapped fresh pages and faulted them in again, zeroed (docs/performance.md). With
/// both thresholds fixed high the allocator reuses the blocks it has. Process-wide and
/// idempotent; a pipeline's process sets it.
enum HeapRetention {
    /// Blocks up to this size come from the heap and are reused (glibc's ceiling is 32 MiB).
    static let mmapThreshold: Int32 = 32 << 20
    /// Free memory at the top of a heap is returned only beyond this. 16 MiB, not more: a
    /// default batch's largest blocks are a few MiB (bigger `batch_max_records` make bigger ones,
    /// which are then trimmed more often), and at 64 MiB a 1M-record backlog's peak RSS was about
    /// 10 MiB higher (median 219 MiB against 208, ranges overlapping), at the same CPU
    /// (docs/performance.md, twelfth pass).
    static let trimThreshold: Int32 = 16 << 20

    private typealias MalloptFunction = @convention(c) (Int32, Int32) -> Int32
    /// glibc's `mallopt`, which the Glibc module does not export (malloc.h), looked up like
    /// `HeapAllocations`' counter; nil with another C library.
    nonisolated(unsafe) private static let mallopt: MalloptFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return nil }
        return unsafeBitCast(symbol, to: MalloptFunction.self)
    }()
    /// malloc.h's parameter numbers.
    private static let trimThresholdParameter: Int32 = -1, mmapThresholdParameter: Int32 = -3

    /// Whether glibc took both settings (each is tried either way).
    @discardableResult
    static func apply() -> Bool {
        guard let mallopt else { return false }
        let mmap = mallopt(mmapThresholdParameter, mmapThreshold) == 1
        let trim = mallopt(trimThresholdParameter, trimThreshold) == 1
        return mmap && trim
    }
}
