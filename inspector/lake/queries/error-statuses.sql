-- gRPC calls that ended with a status other than OK, counted per method and status, with their first 5 captures
SELECT c.path AS method,
       c.status,
       c.status_name,
       count(*) AS calls,
       count(DISTINCT c.capture) AS captures,
       array_to_string(list_slice(list(DISTINCT k.path ORDER BY k.path), 1, 5), ', ')
           || CASE WHEN count(DISTINCT k.path) > 5
                   THEN printf(' ... (%d more)', count(DISTINCT k.path) - 5) ELSE '' END AS capture_paths
FROM calls AS c
JOIN captures AS k ON k.capture = c.capture
WHERE c.status IS NOT NULL AND c.status <> 0
GROUP BY c.path, c.status, c.status_name
ORDER BY calls DESC, method, c.status;
