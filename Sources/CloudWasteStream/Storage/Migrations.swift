public import CloudWastePostgres

/// Versioned schema changes, applied in order under an advisory lock (so several instances
/// starting together do not race) and recorded in `schema_migrations`.
public struct Migrator {
    public struct Migration: Sendable {
        public var version: Int
        public var name: String
        /// The statements, for the schema given.
        public var sql: @Sendable (_ schema: PostgresIdentifier) -> PostgresQuery
    }

    public let schema: String

    public init(schema: String) { self.schema = schema }

    /// Applies what is missing; returns the versions applied now.
    @discardableResult
    public func migrate(_ db: PostgresConnection) throws -> [Int] {
        let s = PostgresIdentifier(schema)
        return try db.transaction {
            try db.query("SELECT pg_advisory_xact_lock(hashtext('cloudwaste-stream migrate'))")
            try db.query("CREATE SCHEMA IF NOT EXISTS \(s)")
            try db.query("""
                CREATE TABLE IF NOT EXISTS \(s).schema_migrations (
                    version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let applied = Set(try db.query("SELECT version FROM \(s).schema_migrations").decodeColumn(as: Int.self))
            var done: [Int] = []
            for m in Self.migrations where !applied.contains(m.version) {
                try db.query(sql(of: m))
                try db.query("INSERT INTO \(s).schema_migrations (version, name) VALUES (\(m.version), \(m.name))")
                done.append(m.version)
            }
            return done
        }
    }

    /// A migration's statements for this schema.
    public func sql(of m: Migration) -> PostgresQuery { m.sql(PostgresIdentifier(schema)) }

    public static let migrations: [Migration] = [
        Migration(version: 1, name: "ml tables, offsets, windows, privacy, dead letters", sql: { s in """
        CREATE TABLE \(s).stream_offsets (
            consumer_group text NOT NULL, topic text NOT NULL, partition int NOT NULL,
            next_offset bigint NOT NULL,          -- -1: nothing processed yet
            generation bigint NOT NULL,           -- bumped by every claim: fences zombies
            owner text,
            max_event_time timestamptz,           -- for the window watermark
            last_record_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer_group, topic, partition));

        CREATE TABLE \(s).ml_training_data (
            scan_hash text COLLATE "C" NOT NULL, resource_hash text COLLATE "C" NOT NULL,
            account_hash text COLLATE "C" NOT NULL, user_hash text COLLATE "C" NOT NULL, event_hash text COLLATE "C" NOT NULL,
            provider text NOT NULL, region_bucket text NOT NULL, resource_type text NOT NULL,
            scenario text NOT NULL, confidence text NOT NULL,
            estimated_monthly_cost double precision NOT NULL, currency text NOT NULL,
            resource_age_days int, created_hour_utc smallint, created_dow smallint,
            metrics jsonb NOT NULL, tag_keys text[] NOT NULL, env_class text, parent_hash text COLLATE "C",
            detected_at timestamptz NOT NULL, key_id text NOT NULL,
            source_topic text NOT NULL, source_partition int NOT NULL, source_offset bigint NOT NULL,
            ingested_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (scan_hash, resource_hash));
        CREATE INDEX ml_training_data_detected_brin ON \(s).ml_training_data USING brin (detected_at);

        CREATE TABLE \(s).user_action_patterns (
            event_hash text COLLATE "C" PRIMARY KEY,
            user_hash text COLLATE "C" NOT NULL, account_hash text COLLATE "C" NOT NULL, resource_hash text COLLATE "C" NOT NULL,
            provider text NOT NULL, resource_type text NOT NULL, action text NOT NULL,
            detected_at timestamptz NOT NULL, action_at timestamptz NOT NULL,
            time_to_action_hours double precision NOT NULL, cost_saved_monthly double precision,
            key_id text NOT NULL,
            source_topic text NOT NULL, source_partition int NOT NULL, source_offset bigint NOT NULL,
            ingested_at timestamptz NOT NULL DEFAULT now());
        CREATE INDEX user_action_patterns_action_brin ON \(s).user_action_patterns USING brin (action_at);

        CREATE TABLE \(s).resource_lifecycle_events (
            event_hash text COLLATE "C" PRIMARY KEY,
            account_hash text COLLATE "C" NOT NULL, resource_hash text COLLATE "C" NOT NULL, provider text NOT NULL,
            resource_type text NOT NULL, from_state text, to_state text NOT NULL,
            occurred_at timestamptz NOT NULL, key_id text NOT NULL,
            source_topic text NOT NULL, source_partition int NOT NULL, source_offset bigint NOT NULL,
            ingested_at timestamptz NOT NULL DEFAULT now());

        CREATE TABLE \(s).cloudwatch_metrics_history (
            resource_hash text COLLATE "C" NOT NULL, metric text COLLATE "C" NOT NULL, ts timestamptz NOT NULL,
            account_hash text COLLATE "C" NOT NULL, provider text NOT NULL, unit text, value double precision NOT NULL,
            key_id text NOT NULL,
            source_topic text NOT NULL, source_partition int NOT NULL, source_offset bigint NOT NULL,
            ingested_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (resource_hash, metric, ts));

        CREATE TABLE \(s).user_preferences (
            user_hash text COLLATE "C" PRIMARY KEY,
            consent text NOT NULL CHECK (consent IN ('collect', 'opted_out')),
            updated_at timestamptz NOT NULL, erased_at timestamptz, key_id text NOT NULL);

        -- Consent history, so that a record is judged by the consent in force at its event time.
        CREATE TABLE \(s).consent_events (
            user_hash text COLLATE "C" NOT NULL, effective_at timestamptz NOT NULL, event_hash text COLLATE "C" NOT NULL,
            consent text NOT NULL CHECK (consent IN ('collect', 'opted_out')),
            PRIMARY KEY (user_hash, effective_at, event_hash));

        -- Erasures outlive replays: a replay never brings an erased user's rows back.
        CREATE TABLE \(s).erasures (
            user_hash text COLLATE "C" PRIMARY KEY, erased_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(), deleted_rows jsonb NOT NULL, source text NOT NULL);

        CREATE TABLE \(s).cost_trend_data (
            account_hash text COLLATE "C" NOT NULL, month date NOT NULL, provider text NOT NULL,
            resources_detected int NOT NULL, waste_detected_monthly_cost numeric(18,4) NOT NULL,
            resources_eliminated int NOT NULL, waste_eliminated_monthly_cost numeric(18,4) NOT NULL,
            top_categories jsonb NOT NULL, late_records int NOT NULL DEFAULT 0,
            revision int NOT NULL DEFAULT 1, finalized boolean NOT NULL DEFAULT false,
            updated_at timestamptz NOT NULL DEFAULT now(), emitted_revision int NOT NULL DEFAULT 0,
            key_id text NOT NULL,
            PRIMARY KEY (account_hash, month));

        -- Pseudonym columns use the "C" collation: byte order is all a hex hash needs, and it
        -- makes every primary-key comparison a memcmp instead of a locale-aware strcoll.

        -- Window state: each resource's latest estimate per account and month (daily rescans
        -- replace, never add), and each deleted resource's latest saving.
        CREATE TABLE \(s).window_resource_costs (
            account_hash text COLLATE "C" NOT NULL, month date NOT NULL, resource_hash text COLLATE "C" NOT NULL,
            user_hash text COLLATE "C" NOT NULL, provider text NOT NULL, resource_type text NOT NULL,
            cost numeric(18,4) NOT NULL, detected_at timestamptz NOT NULL,
            source_partition int NOT NULL, source_offset bigint NOT NULL,
            PRIMARY KEY (account_hash, month, resource_hash));
        CREATE TABLE \(s).window_eliminations (
            account_hash text COLLATE "C" NOT NULL, month date NOT NULL, resource_hash text COLLATE "C" NOT NULL,
            user_hash text COLLATE "C" NOT NULL, provider text NOT NULL,
            cost_saved numeric(18,4) NOT NULL, action_at timestamptz NOT NULL,
            source_partition int NOT NULL, source_offset bigint NOT NULL,
            PRIMARY KEY (account_hash, month, resource_hash));

        CREATE TABLE \(s).dead_letters (
            source_topic text NOT NULL, source_partition int NOT NULL, source_offset bigint NOT NULL,
            reason text NOT NULL, reason_code text NOT NULL,
            payload_sha256 text, payload_bytes int NOT NULL, key_sha256 text,
            consumer_group text NOT NULL, received_at timestamptz NOT NULL DEFAULT now(),
            redriven_at timestamptz,
            PRIMARY KEY (source_topic, source_partition, source_offset));

        CREATE TABLE \(s).schedule_runs (
            schedule text PRIMARY KEY, last_fire timestamptz NOT NULL, finished_at timestamptz NOT NULL, detail text);
        """ }),
        // Erasure and late opt-outs delete by user pseudonym; without these indexes each request
        // scanned whole tables, which made a million-record run spend most of its time there.
        Migration(version: 2, name: "indexes by user pseudonym for erasure and consent corrections", sql: { s in """
        CREATE INDEX IF NOT EXISTS ml_training_data_user ON \(s).ml_training_data (user_hash);
        CREATE INDEX IF NOT EXISTS user_action_patterns_user ON \(s).user_action_patterns (user_hash);
        CREATE INDEX IF NOT EXISTS window_resource_costs_user ON \(s).window_resource_costs (user_hash);
        CREATE INDEX IF NOT EXISTS window_eliminations_user ON \(s).window_eliminations (user_hash);
        """ }),
        // Account-months whose window state changed since cost_trend_data was last recomputed
        // (recomputation is throttled to windows.recompute_interval_ms); written in the batch's
        // transaction, so a crash never loses one.
        Migration(version: 3, name: "account-months awaiting a cost-trend recompute", sql: { s in """
        CREATE TABLE \(s).window_dirty_months (
            account_hash text COLLATE "C" NOT NULL, month date NOT NULL, records int NOT NULL,
            PRIMARY KEY (account_hash, month));
        """ }),
        // Several writers append to the recompute queue at once; without a key they never wait on
        // each other (the recomputer sums the entries). Dead letters are published after their
        // commit now, so the table records when that happened.
        Migration(version: 4, name: "append-only recompute queue; dead-letter publication after commit", sql: { s in """
        ALTER TABLE \(s).window_dirty_months DROP CONSTRAINT window_dirty_months_pkey;
        ALTER TABLE \(s).dead_letters ADD COLUMN published_at timestamptz;
        UPDATE \(s).dead_letters SET published_at = received_at;
        CREATE INDEX dead_letters_unpublished ON \(s).dead_letters (received_at) WHERE published_at IS NULL;
        -- Daily rescans update each resource's window row in place: room on the page lets those
        -- be HOT updates (no new index entries).
        ALTER TABLE \(s).window_resource_costs SET (fillfactor = 70);
        ALTER TABLE \(s).window_eliminations SET (fillfactor = 70);
        """ }),
        // SPEC v1.1: money per currency, billed costs. Cost-trend rows were keyed by account and
        // month and summed every currency together; they become one row per currency. Rows from
        // before this version are USD (actions had no currency); account-months whose window
        // state holds another currency are queued, so the recomputer splits them per currency.
        // Instances of an older version cannot write the new keys: stop them all, then migrate.
        Migration(version: 5, name: "money per currency; billed costs per resource and day", sql: { s in """
        ALTER TABLE \(s).user_action_patterns ADD COLUMN currency text NOT NULL DEFAULT 'USD';
        ALTER TABLE \(s).window_eliminations ADD COLUMN currency text NOT NULL DEFAULT 'USD';
        ALTER TABLE \(s).window_eliminations DROP CONSTRAINT window_eliminations_pkey,
            ADD PRIMARY KEY (account_hash, month, resource_hash, currency);
        ALTER TABLE \(s).window_resource_costs ADD COLUMN currency text NOT NULL DEFAULT 'USD';
        UPDATE \(s).window_resource_costs w SET currency = m.currency
          FROM \(s).ml_training_data m
         WHERE m.currency <> 'USD' AND m.resource_hash = w.resource_hash AND m.account_hash = w.account_hash
           AND m.detected_at = w.detected_at AND m.source_partition = w.source_partition AND m.source_offset = w.source_offset;
        ALTER TABLE \(s).window_resource_costs DROP CONSTRAINT window_resource_costs_pkey,
            ADD PRIMARY KEY (account_hash, month, resource_hash, currency);
        ALTER TABLE \(s).window_dirty_months ADD COLUMN currency text;
        -- The cost-trend topic's keys were account_hash:month; they become
        -- account_hash:month:currency. Every row is published again under its new key, and each
        -- old key that was published gets one tombstone, so a compacted topic keeps no sum over
        -- several currencies (the publisher empties this table).
        CREATE TABLE \(s).legacy_trend_keys (key text PRIMARY KEY);
        INSERT INTO \(s).legacy_trend_keys
        SELECT account_hash || ':' || to_char(month, 'YYYY-MM-DD') FROM \(s).cost_trend_data WHERE emitted_revision > 0;
        UPDATE \(s).cost_trend_data SET emitted_revision = 0;
        ALTER TABLE \(s).cost_trend_data ADD COLUMN currency text NOT NULL DEFAULT 'USD',
            ADD COLUMN billed_resources int NOT NULL DEFAULT 0,
            ADD COLUMN billed_waste_monthly_cost numeric(18,4) NOT NULL DEFAULT 0;
        ALTER TABLE \(s).cost_trend_data DROP CONSTRAINT cost_trend_data_pkey, ADD PRIMARY KEY (account_hash, month, currency);
        INSERT INTO \(s).window_dirty_months (account_hash, month, currency, records)
        SELECT DISTINCT account_hash, month, NULL::text, 0 FROM \(s).window_resource_costs WHERE currency <> 'USD';

        -- What billing reported per resource, day and cost type; a restated day keeps the record
        -- with the latest source position.
        CREATE TABLE \(s).resource_billed_costs (
            resource_hash text COLLATE "C" NOT NULL, usage_date date NOT NULL, cost_type text NOT NULL,
            account_hash text COLLATE "C" NOT NULL, event_hash text COLLATE "C" NOT NULL, provider text NOT NULL,
            currency text NOT NULL, amount double precision NOT NULL, source text, key_id text NOT NULL,
            source_topic text NOT NULL, source_partition int NOT NULL, source_offset bigint NOT NULL,
            ingested_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (resource_hash, usage_date, cost_type));
        CREATE INDEX resource_billed_costs_usage_brin ON \(s).resource_billed_costs USING brin (usage_date);
        -- The dataset labels each detection with the first later action on its resource.
        CREATE INDEX user_action_patterns_resource ON \(s).user_action_patterns (resource_hash, action_at);
        """ }),
        // Window state per user. It kept the latest detection (and saving) of a resource per
        // account, month and currency, whoever's it was, so a privacy request had to rebuild its
        // months from every user's fact rows: a scan of a month of ml_training_data under the
        // user's privacy lock, which grew with the fleet. Keyed by user too, a request corrects
        // only that user's rows, found by the user index, and the recompute takes the latest over
        // users. Other users' latest rows of the months the state holds are added from the fact
        // tables where those still have them (one scan of each, once); the latest of all is
        // already there, so no cost-trend row changes.
        Migration(version: 6, name: "window state per user", sql: { s in """
        ALTER TABLE \(s).window_resource_costs DROP CONSTRAINT window_resource_costs_pkey,
            ADD PRIMARY KEY (account_hash, month, resource_hash, currency, user_hash);
        ALTER TABLE \(s).window_eliminations DROP CONSTRAINT window_eliminations_pkey,
            ADD PRIMARY KEY (account_hash, month, resource_hash, currency, user_hash);
        INSERT INTO \(s).window_resource_costs
            (account_hash, month, resource_hash, currency, user_hash, provider, resource_type, cost, detected_at,
             source_partition, source_offset)
        SELECT DISTINCT ON (m.account_hash, m.month, m.resource_hash, m.currency, m.user_hash)
               m.account_hash, m.month, m.resource_hash, m.currency, m.user_hash, m.provider, m.resource_type,
               m.estimated_monthly_cost::numeric(18,4), m.detected_at, m.source_partition, m.source_offset
          FROM (SELECT *, date_trunc('month', detected_at AT TIME ZONE 'UTC')::date AS month FROM \(s).ml_training_data) m
          JOIN (SELECT DISTINCT account_hash, month FROM \(s).window_resource_costs) g USING (account_hash, month)
         ORDER BY m.account_hash, m.month, m.resource_hash, m.currency, m.user_hash,
                  m.detected_at DESC, m.source_partition DESC, m.source_offset DESC
        ON CONFLICT DO NOTHING;
        INSERT INTO \(s).window_eliminations
            (account_hash, month, resource_hash, currency, user_hash, provider, cost_saved, action_at, source_partition, source_offset)
        SELECT DISTINCT ON (a.account_hash, a.month, a.resource_hash, a.currency, a.user_hash)
               a.account_hash, a.month, a.resource_hash, a.currency, a.user_hash, a.provider,
               COALESCE(a.cost_saved_monthly, 0)::numeric(18,4), a.action_at, a.source_partition, a.source_offset
          FROM (SELECT *, date_trunc('month', action_at AT TIME ZONE 'UTC')::date AS month
                  FROM \(s).user_action_patterns WHERE action = 'deleted') a
          JOIN (SELECT DISTINCT account_hash, month FROM \(s).window_eliminations) g USING (account_hash, month)
         ORDER BY a.account_hash, a.month, a.resource_hash, a.currency, a.user_hash,
                  a.action_at DESC, a.source_partition DESC, a.source_offset DESC
        ON CONFLICT DO NOTHING;
        """ }),
        // A dead letter's topic ends as they were just before it was sent: a run that finds the row
        // unpublished (stopped with PostgreSQL down, or killed between sending and marking) reads
        // the topic from there and marks what is already on it instead of sending it again.
        Migration(version: 7, name: "dead letters remember where their sending started", sql: { s in """
        ALTER TABLE \(s).dead_letters ADD COLUMN IF NOT EXISTS send_from_partitions int[];
        ALTER TABLE \(s).dead_letters ADD COLUMN IF NOT EXISTS send_from_offsets bigint[];
        """ }),
        // SPEC v1.2: a pseudonym is 32 bytes, stored as such. Every text `*_hash` column of the
        // schema becomes `bytea`, its hex decoded in place, with a CHECK that it holds exactly 32
        // bytes (`<column>_is_pseudonym`): one rewrite per table, indexes rebuilt, in the
        // migration's transaction. Found from the catalog, so it converts every such column and
        // none twice. A CHECK rather than a domain: a domain belongs to one schema, and replay
        // moves tables between schemas and drops the one they came from, which would drop every
        // column of that domain with it. The one value that was not a pseudonym, a `forget`
        // command's consent event (`forget:<micros>`), becomes the SHA-256 of that text, as
        // `forget` now names it. Instances of an older version write hex text: stop them all,
        // then migrate. docs/pseudonym-storage.md says how long it takes per million rows.
        Migration(version: 8, name: "pseudonyms as 32-byte bytea", sql: { s in """
        DO $migration$
        DECLARE
            schema_oid oid := (SELECT oid FROM pg_namespace WHERE nspname = \(literal: s.name));
            target record;
        BEGIN
            FOR target IN
                SELECT c.oid::regclass AS table_name,
                       string_agg(format('ALTER COLUMN %1$I TYPE bytea USING %2$s, '
                                         'ADD CONSTRAINT %3$I CHECK (octet_length(%1$I) = 32)',
                                         a.attname,
                                         CASE WHEN c.relname = 'consent_events' AND a.attname = 'event_hash'
                                              THEN format('CASE WHEN %1$I ~ ''^[0-9a-f]{64}$'' THEN decode(%1$I, ''hex'')'
                                                          ' ELSE sha256(convert_to(%1$I, ''UTF8'')) END', a.attname)
                                              ELSE format('decode(%I, ''hex'')', a.attname) END,
                                         a.attname || '_is_pseudonym'),
                                  ', ' ORDER BY a.attnum) AS clauses
                  FROM pg_class c
                  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 WHERE c.relnamespace = schema_oid AND c.relkind = 'r'
                   AND a.attname LIKE '%\\_hash' AND a.atttypid = 'text'::regtype
                 GROUP BY c.oid, c.relname ORDER BY c.relname
            LOOP
                EXECUTE format('ALTER TABLE %s %s', target.table_name, target.clauses);
                EXECUTE format('ANALYZE %s', target.table_name);
            END LOOP;
        END
        $migration$;
        """ }),
    ]
}

import Foundation
