import Glibc

/// Heap allocations of this process so far, when it runs with the benchmark's allocation counter
/// preloaded (`scripts/tools/malloc-counter.c`, LD_PRELOAD); nil otherwise. Lets `bench` and
/// `bench-decode` print allocations per record without a profiler and without a build option.
public enum HeapAllocations {
    private typealias CountFunction = @convention(c) () -> UInt
    nonisolated(unsafe) private static let counter: CountFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "cloudwaste_malloc_count") else { return nil }
        return unsafeBitCast(symbol, to: CountFunction.self)
    }()

    public static var count: Int? { counter.map { Int($0()) } }
}
