"""TLS records, handshakes and decryption from key logs (NSS key log format)."""
