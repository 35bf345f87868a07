"""WebRTC sessions: signaling, ICE, TURN, DTLS and media walked phase by phase."""
