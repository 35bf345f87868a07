/* One side of a DTLS 1.3 (RFC 9147) conversation over 127.0.0.1 UDP, with wolfSSL.
 *
 * Built and run by make_dtls13.py (read its docstring for how to get a wolfSSL with DTLS 1.3).
 *
 *   dtls13_peer client LPORT RPORT CIPHER KEYLOG KEY_UPDATE_AT MSG...
 *   dtls13_peer server LPORT CERT KEY CIPHER MSG...
 *
 * The messages alternate: MSG 0, 2, 4... are the client's, 1, 3, 5... the server's. Each side
 * writes its own and reads the other's, checking it is the one expected (exit 1 if not). Before
 * message KEY_UPDATE_AT (-1: never) the client sends a KeyUpdate. The client writes the TLS 1.3
 * secrets in the NSS key log format (wolfSSL's secret callback gives the kind and the bytes; the
 * labels are written here); the client closes with close_notify.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static FILE *keylog;
static int logged[8];

static const char *label(int id)
{
    switch (id) {
    case CLIENT_EARLY_TRAFFIC_SECRET: return "CLIENT_EARLY_TRAFFIC_SECRET";
    case CLIENT_HANDSHAKE_TRAFFIC_SECRET: return "CLIENT_HANDSHAKE_TRAFFIC_SECRET";
    case SERVER_HANDSHAKE_TRAFFIC_SECRET: return "SERVER_HANDSHAKE_TRAFFIC_SECRET";
    case CLIENT_TRAFFIC_SECRET: return "CLIENT_TRAFFIC_SECRET_0";
    case SERVER_TRAFFIC_SECRET: return "SERVER_TRAFFIC_SECRET_0";
    case EARLY_EXPORTER_SECRET: return "EARLY_EXPORTER_SECRET";
    case EXPORTER_SECRET: return "EXPORTER_SECRET";
    default: return NULL;
    }
}

/* Called for every secret derived; a KeyUpdate derives CLIENT/SERVER_TRAFFIC_SECRET again, and
 * the key log format has only the first (_0): later ones are derived by the reader. */
static int secret_cb(WOLFSSL *ssl, int id, const unsigned char *secret, int size, void *ctx)
{
    unsigned char random[32];
    const char *name = label(id);
    (void)ctx;
    if (name == NULL || id < 0 || id >= 8 || logged[id] || keylog == NULL)
        return 0;
    logged[id] = 1;
    if (wolfSSL_get_client_random(ssl, random, sizeof random) != sizeof random)
        return 0;
    fprintf(keylog, "%s ", name);
    for (size_t i = 0; i < sizeof random; i++)
        fprintf(keylog, "%02x", random[i]);
    fputc(' ', keylog);
    for (int i = 0; i < size; i++)
        fprintf(keylog, "%02x", secret[i]);
    fputc('\n', keylog);
    fflush(keylog);
    return 0;
}

static int udp(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("bind");
        exit(2);
    }
    return fd;
}

static void fail(WOLFSSL *ssl, const char *what, int ret)
{
    char text[80];
    int err = wolfSSL_get_error(ssl, ret);
    fprintf(stderr, "%s: %d %s\n", what, err, wolfSSL_ERR_error_string(err, text));
    exit(1);
}

/* Write ours, read theirs, in the order of msgs. */
static void talk(WOLFSSL *ssl, int client, char **msgs, int count, int key_update_at)
{
    char buf[4096];
    for (int i = 0; i < count; i++) {
        int ours = (i % 2 == 0) == client;
        int len = (int)strlen(msgs[i]);
        if (ours) {
            if (client && i == key_update_at && wolfSSL_update_keys(ssl) != WOLFSSL_SUCCESS)
                fail(ssl, "update_keys", 0);
            int ret = wolfSSL_write(ssl, msgs[i], len);
            if (ret != len)
                fail(ssl, "write", ret);
        } else {
            int ret = wolfSSL_read(ssl, buf, sizeof buf);
            if (ret != len || memcmp(buf, msgs[i], len) != 0) {
                if (ret <= 0)
                    fail(ssl, "read", ret);
                fprintf(stderr, "message %d: got %d bytes, expected %d\n", i, ret, len);
                exit(1);
            }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: see the comment at the top of dtls13_peer.c\n");
        return 2;
    }
    int client = strcmp(argv[1], "client") == 0;
    wolfSSL_Init();
    WOLFSSL_CTX *ctx =
        wolfSSL_CTX_new(client ? wolfDTLSv1_3_client_method() : wolfDTLSv1_3_server_method());
    if (ctx == NULL)
        return 2;
    int fd = udp(atoi(argv[2]));
    struct sockaddr_in peer = {.sin_family = AF_INET};
    socklen_t peer_len = sizeof peer;
    const char *cipher;
    char **msgs;
    int count, key_update_at = -1;
    if (client) {
        if (argc < 7)
            return 2;
        cipher = argv[4];
        keylog = fopen(argv[5], "a");
        key_update_at = atoi(argv[6]);
        msgs = argv + 7;
        count = argc - 7;
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
        peer.sin_port = htons(atoi(argv[3]));
        inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
    } else {
        cipher = argv[5];
        msgs = argv + 6;
        count = argc - 6;
        if (wolfSSL_CTX_use_certificate_file(ctx, argv[3], WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_use_PrivateKey_file(ctx, argv[4], WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
            fprintf(stderr, "cannot load the certificate or key\n");
            return 2;
        }
        printf("ready\n");
        fflush(stdout);
        char probe[1];
        if (recvfrom(fd, probe, sizeof probe, MSG_PEEK, (struct sockaddr *)&peer, &peer_len) < 0)
            return 2;
    }
    if (wolfSSL_CTX_set_cipher_list(ctx, cipher) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "cipher %s refused\n", cipher);
        return 2;
    }
    if (connect(fd, (struct sockaddr *)&peer, sizeof peer) != 0)
        return 2;
    WOLFSSL *ssl = wolfSSL_new(ctx);
    if (ssl == NULL)
        return 2;
    wolfSSL_set_fd(ssl, fd);
    wolfSSL_dtls_set_peer(ssl, &peer, sizeof peer);
    if (client)
        wolfSSL_set_tls13_secret_cb(ssl, secret_cb, NULL);
    int ret = client ? wolfSSL_connect(ssl) : wolfSSL_accept(ssl);
    if (ret != WOLFSSL_SUCCESS)
        fail(ssl, client ? "connect" : "accept", ret);
    talk(ssl, client, msgs, count, key_update_at);
    if (client) {
        wolfSSL_shutdown(ssl);
    } else {
        char buf[64];
        ret = wolfSSL_read(ssl, buf, sizeof buf); /* the client's close_notify */
        wolfSSL_shutdown(ssl);
    }
    wolfSSL_free(ssl);
    wolfSSL_CTX_free(ctx);
    wolfSSL_Cleanup();
    if (keylog != NULL)
        fclose(keylog);
    close(fd);
    return 0;
}
