-- RTP streams that lost packets: how many, the loss ratio and the jitter, worst first
SELECT st.lost,
       st.expected,
       round(st.lost / nullif(st.expected, 0), 4) AS loss_ratio,
       st.max_jitter_ms,
       st.mean_jitter_ms,
       printf('0x%08x', st.ssrc) AS ssrc,
       st.payload_type,
       st.codec,
       st.src,
       st.dst,
       st.stream,
       k.path AS capture_path,
       st.capture
FROM streams AS st
JOIN captures AS k ON k.capture = st.capture
WHERE st.lost > 0
ORDER BY loss_ratio DESC, st.lost DESC, k.path, st.stream;
