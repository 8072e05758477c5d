import CloudWastePostgres

/// Advisory locks that keep a privacy request and the batches carrying the same user apart, and
/// nothing else. A batch holds, shared, the lock of each of its users' buckets; a privacy request
/// holds its user's bucket exclusively. So no batch can store a user's record while that user's
/// consent change or erasure is being applied, on whatever writer or instance either runs, and
/// batches of other users never wait. Users are hashed into a fixed number of buckets so that a
/// batch with thousands of users stays within PostgreSQL's lock table; keys are taken in
/// ascending order, so transactions never wait on each other in a cycle.
struct PrivacyLocks {
    static let buckets = 1024
    private let base: UInt64

    init(schema: String) { base = stableHash("cloudwaste-stream/privacy/\(schema)") }

    /// The bucket of a user: a hash of the pseudonym's hex, as every version so far computed it
    /// (two versions running side by side during an upgrade must lock the same keys).
    func key(user: Pseudonym) -> Int64 {
        withUnsafeTemporaryAllocation(byteCount: 64, alignment: 1) { hex in
            user.writeHex(into: hex)
            return key(hash: stableHash(bytes: UnsafeRawBufferPointer(hex)))
        }
    }

    private func key(hash: UInt64) -> Int64 {
        Int64(bitPattern: (base &+ hash % UInt64(Self.buckets)) & 0x7FFF_FFFF_FFFF_FFFF)
    }

    /// One statement that takes the locks of `shared` users shared and of `exclusive` users
    /// exclusively (a bucket in both is taken exclusively), in key order.
    func statement(shared: some Sequence<Pseudonym>, exclusive: some Sequence<Pseudonym>) -> PostgresQuery {
        statement(sharedKeys: shared.lazy.map(key(user:)), exclusiveKeys: exclusive.lazy.map(key(user:)))
    }

    private func statement(sharedKeys: some Sequence<Int64>, exclusiveKeys: some Sequence<Int64>) -> PostgresQuery {
        var mode: [Int64: Bool] = [:]
        for k in sharedKeys where mode[k] == nil { mode[k] = false }
        for k in exclusiveKeys { mode[k] = true }
        guard !mode.isEmpty else { return "SELECT 1" }
        // unnest keeps the arrays' (ascending) order.
        let sorted = mode.sorted { $0.key < $1.key }
        return """
            SELECT CASE WHEN x THEN pg_advisory_xact_lock(k) ELSE pg_advisory_xact_lock_shared(k) END
              FROM unnest(\(sorted.map(\.key))::bigint[], \(sorted.map(\.value))::boolean[]) AS u(k, x)
            """
    }
}
