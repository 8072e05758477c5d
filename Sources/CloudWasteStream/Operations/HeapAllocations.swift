import Glibc

/// Heap allocations of this process so far, when it runs with the benchmark's allocation counter
/// preloaded (`scripts/tools/malloc-counter.c`, LD_PRELOAD); nil otherwise. Lets `bench` and
/// `bench-decode` print allocations per record without a profiler and without a build option.
public enum HeapAllocations {
    private typealias CountFunction = @convention(c) () -> UInt
    nonisolated(unsafe) private static let counter = function("cloudwaste_malloc_count")
    nonisolated(unsafe) private static let librdkafkaCounter = function("cloudwaste_malloc_count_librdkafka")

    private static func function(_ name: String) -> CountFunction? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(symbol, to: CountFunction.self)
    }

    public static var count: Int? { counter.map { Int($0()) } }

    /// The part of `count` made on librdkafka's own threads (its main and broker threads, where
    /// fetched messages become ops): what the daemon's code cannot avoid with this library.
    public static var librdkafkaCount: Int? { librdkafkaCounter.map { Int($0()) } }
}
