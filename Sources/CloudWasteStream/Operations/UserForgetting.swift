public import CloudWastePostgres

/// `cloudwaste-stream forget --user ID` (GDPR erasure): every row carrying the user's pseudonym
/// is deleted in one transaction under the exclusive privacy lock, the erasure is recorded, and
/// the cost-trend rows that counted the user are recomputed at once (as the schema's recomputer).
public enum UserForgetting {
    public static func forget(userHash: Pseudonym, keyId: String, config: StreamConfig, connection db: PostgresConnection)
        throws -> (report: ErasureReport, emissions: [TrendEmission]) {
        let privacy = PrivacyRequests(connection: db, schema: config.postgresSchema, consentMode: config.consentMode,
                                      windowsEnabled: config.windowsEnabled)
        let report = try privacy.forget(userHash: userHash, keyId: keyId)
        guard config.windowsEnabled else { return (report, []) }
        let windows = CostTrendWindows(connection: db, settings: CostTrendWindows.Settings(config: config))
        let emissions = try windows.recompute(keyId: keyId, wait: true, lockTimeoutSeconds: 30)?.emissions ?? []
        return (report, emissions)
    }
}
