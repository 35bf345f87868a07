-- The 20 slowest gRPC calls, each beside its method's median (p50) and p95 duration over the dataset
WITH methods AS (
    SELECT path,
           count(*) AS method_calls,
           quantile_cont(duration, 0.5) AS p50_s,
           quantile_cont(duration, 0.95) AS p95_s
    FROM calls
    WHERE duration IS NOT NULL
    GROUP BY path
)
SELECT c.duration AS duration_s,
       m.p50_s,
       m.p95_s,
       m.method_calls,
       c.path AS method,
       c.status_name,
       c.call,
       c.flow,
       c.stream_id,
       k.path AS capture_path,
       c.capture
FROM calls AS c
JOIN methods AS m ON m.path IS NOT DISTINCT FROM c.path
JOIN captures AS k ON k.capture = c.capture
WHERE c.duration IS NOT NULL
ORDER BY c.duration DESC, k.path, c.call
LIMIT 20;
