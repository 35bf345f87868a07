-- WebRTC sessions whose selected candidate pair goes through a TURN relay: the relayed address, its TURN server
WITH relayed AS (
    SELECT s.*,
           CASE WHEN s.selected_local_type = 'relay' THEN s.selected_local
                ELSE s.selected_remote END AS relay_address,
           CASE WHEN s.selected_local_type = 'relay' AND s.selected_remote_type = 'relay' THEN 'both'
                WHEN s.selected_local_type = 'relay' THEN 'local'
                ELSE 'remote' END AS relayed_side
    FROM sessions AS s
    WHERE s.relayed
)
SELECT r.session,
       r.relay_address,
       r.relayed_side,
       (SELECT string_agg(DISTINCT t.server, ', ')
        FROM turn_allocations AS t
        WHERE t.capture = r.capture AND t.relayed = r.relay_address) AS turn_server,
       r.selected_local,
       r.selected_local_type,
       r.selected_remote,
       r.selected_remote_type,
       r.dtls_state,
       k.path AS capture_path,
       r.capture
FROM relayed AS r
JOIN captures AS k ON k.capture = r.capture
ORDER BY k.path, r.session;
