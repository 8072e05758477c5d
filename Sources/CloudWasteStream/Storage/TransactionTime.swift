import CloudWastePostgres

extension PostgresConnection {
    /// The start of the current transaction on the server's clock (`now()`): what exports,
    /// datasets and retention measure their windows from, so that every statement of one run
    /// agrees on the time whatever the clocks of the hosts.
    func transactionStart() throws(PostgresError) -> Timestamp {
        Timestamp(micros: try query("SELECT (extract(epoch FROM now()) * 1000000)::bigint").decode(Int64.self))
    }
}
