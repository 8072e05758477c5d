-- What the window-state statement costs, and what each of its parts costs (docs/performance.md,
-- "The window statement, dissected"). Run against the database a benchmark left behind:
--   CLOUDWASTE_BENCH_KEEP=1 .build/release/cloudwaste-stream bench --records 200000 --runs 1 --end-to-end-only
--   chown -R postgres .state/bench/postgres
--   su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D $PWD/.state/bench/postgres/data -o '-p 55999 -k /tmp' start"
--   su postgres -c "psql -h /tmp -p 55999 -d bench_1 -f scripts/tools/window-statement-variants.sql"
-- Every variant runs in a rolled-back transaction on 3,000 staged detections one second newer than
-- the state (so each is a conflicting update); run the file several times and compare the INSERT
-- timings. It creates two scratch tables (wcopy, wuuid) and drops them at the end.
\set QUIET on
DROP TABLE IF EXISTS wcopy, wuuid;
-- A fresh copy of the state (no dead tuples), and the same state keyed by one uuid.
CREATE TABLE wcopy (LIKE window_resource_costs INCLUDING ALL) WITH (fillfactor = 70);
INSERT INTO wcopy SELECT * FROM window_resource_costs;
CREATE TABLE wuuid (LIKE window_resource_costs INCLUDING DEFAULTS) WITH (fillfactor = 70);
ALTER TABLE wuuid ADD COLUMN k uuid;
INSERT INTO wuuid SELECT *, md5(account_hash || month::text::bytea || resource_hash || currency::bytea || user_hash)::uuid
  FROM window_resource_costs;
ALTER TABLE wuuid ADD PRIMARY KEY (k);
CREATE INDEX ON wuuid (account_hash, month);
CREATE INDEX ON wuuid (user_hash);
VACUUM ANALYZE wcopy;
VACUUM ANALYZE wuuid;
CREATE TEMP TABLE st AS
  SELECT account_hash, month, resource_hash, user_hash, provider, resource_type, cost::float8 AS estimated_monthly_cost,
         currency, detected_at + interval '1 second' AS detected_at, source_partition, source_offset + 1 AS source_offset,
         1 AS records, md5(account_hash || month::text::bytea || resource_hash || currency::bytea || user_hash)::uuid AS k
    FROM window_resource_costs ORDER BY random() LIMIT 3000;
ANALYZE st;
-- The statement's parts, spelled once (psql variables), so that each variant shows what it changes.
\set columns 'account_hash, month, resource_hash, currency, user_hash, provider, resource_type, cost, detected_at, source_partition, source_offset'
\set values 'account_hash, month, resource_hash, currency, user_hash, provider, resource_type, estimated_monthly_cost::numeric(18,4), detected_at, source_partition, source_offset'
\set key '(account_hash, month, resource_hash, currency, user_hash)'
\set newer 'WHERE (EXCLUDED.detected_at, EXCLUDED.source_partition, EXCLUDED.source_offset) >= (w.detected_at, w.source_partition, w.source_offset)'
\set update 'DO UPDATE SET provider = EXCLUDED.provider, resource_type = EXCLUDED.resource_type, cost = EXCLUDED.cost, detected_at = EXCLUDED.detected_at, source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset'
\timing on
\echo the statement the writers run
BEGIN;
WITH win_detect AS (
  INSERT INTO window_resource_costs AS w (:columns) SELECT :values FROM st ON CONFLICT :key :update :newer
), dirty AS (
  INSERT INTO window_dirty_months (account_hash, month, currency, records)
  SELECT account_hash, month, currency, sum(records) FROM st GROUP BY 1, 2, 3)
SELECT count(*) FROM st;
ROLLBACK;
\echo without the recompute-queue CTE
BEGIN;
INSERT INTO window_resource_costs AS w (:columns) SELECT :values FROM st ON CONFLICT :key :update :newer;
ROLLBACK;
\echo without the numeric cast (the cost left as it is)
BEGIN;
INSERT INTO window_resource_costs AS w (:columns)
SELECT account_hash, month, resource_hash, currency, user_hash, provider, resource_type, 1, detected_at, source_partition, source_offset FROM st
ON CONFLICT :key DO UPDATE
   SET provider = EXCLUDED.provider, resource_type = EXCLUDED.resource_type,
       detected_at = EXCLUDED.detected_at, source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset
 :newer;
ROLLBACK;
\echo the conflict check alone (DO NOTHING): live table, fresh copy, uuid key
BEGIN;
INSERT INTO window_resource_costs (:columns) SELECT :values FROM st ON CONFLICT :key DO NOTHING;
INSERT INTO wcopy (:columns) SELECT :values FROM st ON CONFLICT :key DO NOTHING;
INSERT INTO wuuid (k, :columns) SELECT k, :values FROM st ON CONFLICT (k) DO NOTHING;
ROLLBACK;
\echo the upsert: fresh copy, uuid key
BEGIN;
INSERT INTO wcopy AS w (:columns) SELECT :values FROM st ON CONFLICT :key :update :newer;
INSERT INTO wuuid AS w (k, :columns) SELECT k, :values FROM st ON CONFLICT (k) :update :newer;
ROLLBACK;
\echo UPDATE … FROM the staged rows
BEGIN;
UPDATE window_resource_costs w
   SET provider = s.provider, resource_type = s.resource_type, cost = s.estimated_monthly_cost::numeric(18,4),
       detected_at = s.detected_at, source_partition = s.source_partition, source_offset = s.source_offset
  FROM st s
 WHERE w.account_hash = s.account_hash AND w.month = s.month AND w.resource_hash = s.resource_hash AND w.currency = s.currency
   AND w.user_hash = s.user_hash
   AND (s.detected_at, s.source_partition, s.source_offset) >= (w.detected_at, w.source_partition, w.source_offset);
ROLLBACK;
\timing off
DROP TABLE wcopy, wuuid;
