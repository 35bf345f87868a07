-- WebRTC sessions that failed: the phase where they stopped, the diagnosis, and their capture
SELECT s.failed_phase,
       s.diagnosis,
       s.session,
       s.dtls_state,
       s.selected_local,
       s.selected_remote,
       k.path AS capture_path,
       s.capture
FROM sessions AS s
JOIN captures AS k ON k.capture = s.capture
WHERE s.failed_phase IS NOT NULL
ORDER BY k.path, s.session;
