/*
 * The bulk path of `--report calls`: HTTP/2 frames, HPACK, gRPC framing and schema-less protobuf
 * of whole h2c connections, written straight to the report's JSON rows.
 *
 * Why compiled: measured on bench/bench_grpc.py (200,000 packets, 66,400 calls), the Python
 * decoders spend ~6 s on HTTP/2 + HPACK + gRPC + protobuf and ~2.2 s building and dumping rows,
 * about 42 million Python calls spread thin: no one function is hot, so no library call or cache
 * helps (a header-block cache gained 1.5%). The issue asks for 4x tshark (~1 s in all).
 *
 * It is not a second decoder with its own rules: it follows the Python decoders
 * (decoders/http2/decoder.py, header_block.py, grpc/messages.py, grpc/calls.py, protobuf/wire.py
 * and schema.raw_content) step by step, and wherever a connection does anything those handle
 * with more care than copied here (CONTINUATION, unknown table entries, latin-1 headers, gRPC-Web,
 * JSON bodies, malformed frames...), the connection "bails": it is left to the Python decoders
 * whole. HPACK's Huffman state machine and static table come from the hpack
 * package at init. Tests check that rows from here equal the Python rows on every capture and on
 * generated traffic (tests/inspector/test_bulk_calls.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define OK 0
#define BAIL 1
#define FAIL (-1) /* a Python exception is set */
static const char *bail_why = "";
/* Leave the connection to the Python decoders (the function's name says where). */
#define BAILOUT return (bail_why = __func__, BAIL)
#define CK(x)                   \
    do {                        \
        int r_ = (x);           \
        if (r_) return r_;      \
    } while (0)

/* Limits, given by the Python modules at init so that both sides use the same numbers. */
static struct {
    int ready;
    long max_depth;            /* wire.MAX_DEPTH */
    long max_fields;           /* wire.MAX_FIELDS */
    long max_work;             /* wire.MAX_WORK */
    long max_field_number;     /* wire.MAX_FIELD_NUMBER */
    uint64_t max_header_list;  /* header_block.MAX_HEADER_LIST_SIZE */
    uint64_t max_table;        /* header_block.MAX_TABLE_SIZE */
    uint64_t default_table;    /* header_block.DEFAULT_TABLE_SIZE */
    uint64_t max_message;      /* kept lower than messages.MAX_MESSAGE_LEN: larger ones bail */
    uint64_t max_frame;        /* frames longer than this bail (the session's buffer limit is 16 MiB) */
    uint64_t max_headers;      /* header_block.MAX_HEADERS: more in one block bail */
    uint64_t max_streams;      /* decoder.MAX_OPEN_STREAMS */
    uint64_t max_open_calls;   /* calls.MAX_OPEN_CALLS */
    uint64_t messages_first;   /* calls.MESSAGES_KEPT_FIRST */
    uint64_t messages_last;    /* calls.MESSAGES_KEPT_LAST */
    uint64_t message_bytes;    /* calls.MESSAGE_BYTES_KEPT */
    double timeout_rounding;   /* status.TIMEOUT_ROUNDING */
    double timeout_granularity; /* status.TIMEOUT_GRANULARITY */
    /* hpack's Huffman decoding table: 256 states x 16 nibbles of (next state, flags, byte) */
    uint16_t huff_state[256 * 16];
    uint8_t huff_flags[256 * 16];
    uint8_t huff_byte[256 * 16];
    PyObject *decompress; /* grpc.messages.decompress */
    /* HPACK static table */
    int nstatic;
    char *static_name[128];
    size_t static_nlen[128];
    char *static_value[128];
    size_t static_vlen[128];
} G;

#define HUFFMAN_COMPLETE 1
#define HUFFMAN_EMIT_SYMBOL 2
#define HUFFMAN_FAIL 4

/* ---- growable byte buffers ---------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} Buf;

static int buf_grow(Buf *b, size_t extra) {
    if (b->n + extra <= b->cap) return OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        PyErr_NoMemory();
        return FAIL;
    }
    b->p = p;
    b->cap = cap;
    return OK;
}

static int put(Buf *b, const void *s, size_t n) {
    CK(buf_grow(b, n));
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    return OK;
}

#define PUTS(b, s) put((b), (s), sizeof(s) - 1)

/* Room for item number `n` in a growable array of `size`-byte items: the array, or NULL (an
 * exception set) when memory runs out, and then nothing changed. */
static void *grow(void *items, size_t n, size_t *cap, size_t size) {
    if (n < *cap) return items;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(items, c * size);
    if (!p) return PyErr_NoMemory();
    *cap = c;
    return p;
}

static void buf_free(Buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static int put_u64(Buf *b, uint64_t v) {
    char tmp[24];
    size_t k = sizeof tmp;
    do {
        tmp[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(b, tmp + k, sizeof tmp - k);
}

static int put_i64(Buf *b, int64_t v) {
    if (v < 0) {
        CK(put(b, "-", 1));
        return put_u64(b, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(b, (uint64_t)v);
}

/* A float as json.dumps writes it: float.__repr__. The last few are kept: a call's start, its
 * first message and often its end are the same packet's time (repr is a fifth of the work). */
static struct {
    double v;
    char s[32];
    size_t n;
} repr_cache[4];
static unsigned repr_next;

static int put_double(Buf *b, double v) {
    for (unsigned k = 0; k < 4; k++)
        if (repr_cache[k].n && memcmp(&repr_cache[k].v, &v, sizeof v) == 0)
            return put(b, repr_cache[k].s, repr_cache[k].n);
    char *s = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!s) return FAIL;
    size_t n = strlen(s);
    int r = put(b, s, n);
    if (n < sizeof repr_cache[0].s) {
        unsigned k = repr_next++ % 4;
        repr_cache[k].v = v;
        memcpy(repr_cache[k].s, s, n);
        repr_cache[k].n = n;
    }
    PyMem_Free(s);
    return r;
}

/* A JSON string as json.dumps(..., ensure_ascii=False) writes it; `s` is valid UTF-8. */
static int put_jstr(Buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    CK(buf_grow(b, n + 2));
    b->p[b->n++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            CK(buf_grow(b, 1));
            b->p[b->n++] = (char)c;
            continue;
        }
        char esc[6];
        size_t k = 2;
        esc[0] = '\\';
        switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                k = 6;
        }
        CK(put(b, esc, k));
    }
    CK(buf_grow(b, 1));
    b->p[b->n++] = '"';
    return OK;
}

static int put_hex(Buf *b, const uint8_t *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    CK(buf_grow(b, 2 * n + 2));
    b->p[b->n++] = '"';
    for (size_t i = 0; i < n; i++) {
        b->p[b->n++] = hex[s[i] >> 4];
        b->p[b->n++] = hex[s[i] & 15];
    }
    b->p[b->n++] = '"';
    return OK;
}

/* ---- uint32 -> pointer hash map (open addressing) ------------------------------------------ */

typedef struct {
    uint32_t *keys;
    void **vals;
    uint8_t *state; /* 0 empty, 1 used, 2 deleted */
    size_t cap, used, filled;
} Map;

static size_t map_slot(const Map *m, uint32_t k) { return (size_t)((k * 2654435761u) & (m->cap - 1)); }

static void **map_get(Map *m, uint32_t k) {
    if (!m->cap) return NULL;
    for (size_t i = map_slot(m, k);; i = (i + 1) & (m->cap - 1)) {
        if (m->state[i] == 0) return NULL;
        if (m->state[i] == 1 && m->keys[i] == k) return &m->vals[i];
    }
}

static int map_put(Map *m, uint32_t k, void *v);

static int map_rehash(Map *m, size_t cap) {
    Map n = {calloc(cap, 4), calloc(cap, sizeof(void *)), calloc(cap, 1), cap, 0, 0};
    if (!n.keys || !n.vals || !n.state) {
        free(n.keys);
        free(n.vals);
        free(n.state);
        PyErr_NoMemory();
        return FAIL;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->state[i] == 1) map_put(&n, m->keys[i], m->vals[i]);
    free(m->keys);
    free(m->vals);
    free(m->state);
    *m = n;
    return OK;
}

static int map_put(Map *m, uint32_t k, void *v) {
    if ((m->filled + 1) * 2 > m->cap) CK(map_rehash(m, m->cap && m->used * 4 < m->cap ? m->cap : (m->cap ? m->cap * 2 : 16)));
    size_t i = map_slot(m, k);
    while (m->state[i] == 1) i = (i + 1) & (m->cap - 1);
    if (m->state[i] == 0) m->filled++;
    m->state[i] = 1;
    m->keys[i] = k;
    m->vals[i] = v;
    m->used++;
    return OK;
}

static void map_del(Map *m, uint32_t k) {
    if (!m->cap) return;
    for (size_t i = map_slot(m, k);; i = (i + 1) & (m->cap - 1)) {
        if (m->state[i] == 0) return;
        if (m->state[i] == 1 && m->keys[i] == k) {
            m->state[i] = 2;
            m->used--;
            return;
        }
    }
}

static void map_free(Map *m) {
    free(m->keys);
    free(m->vals);
    free(m->state);
    memset(m, 0, sizeof *m);
}

/* ---- HPACK (header_block.py) -------------------------------------------------------------- */

typedef struct {
    char *s; /* name then value */
    size_t nlen, vlen;
    size_t high; /* bytes >= 0x80: Python counts the latin-1 text's UTF-8 length */
} Entry;

typedef struct {
    Entry *e; /* ring: logical 0 (newest) at e[head] */
    size_t cap, head, count;
    uint64_t size, max_size;
} Table;

static uint64_t entry_size(const Entry *x) { return x->nlen + x->vlen + x->high + 32; }

static void table_evict(Table *t) {
    while (t->size > t->max_size && t->count) {
        Entry *old = &t->e[(t->head + t->count - 1) % t->cap];
        t->size -= entry_size(old);
        free(old->s);
        t->count--;
    }
}

static int table_add(Table *t, const char *n, size_t nl, const char *v, size_t vl) {
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        Entry *e = malloc(cap * sizeof(Entry));
        if (!e) {
            PyErr_NoMemory();
            return FAIL;
        }
        for (size_t i = 0; i < t->count; i++) e[i] = t->e[(t->head + i) % t->cap];
        free(t->e);
        t->e = e;
        t->cap = cap;
        t->head = 0;
    }
    Entry x = {malloc(nl + vl + 1), nl, vl, 0};
    for (size_t i = 0; i < vl; i++) x.high += (unsigned char)v[i] >= 0x80;
    if (!x.s) {
        PyErr_NoMemory();
        return FAIL;
    }
    memcpy(x.s, n, nl);
    memcpy(x.s + nl, v, vl);
    t->head = (t->head + t->cap - 1) % t->cap;
    t->e[t->head] = x;
    t->count++;
    t->size += entry_size(&x);
    table_evict(t);
    return OK;
}

static void table_free(Table *t) {
    for (size_t i = 0; i < t->count; i++) free(t->e[(t->head + i) % t->cap].s);
    free(t->e);
    memset(t, 0, sizeof *t);
}

/* A header of a decoded block: offsets into the block's arena. */
typedef struct {
    size_t name, nlen, value, vlen;
} Hdr;

typedef struct {
    Buf arena;
    Hdr *h;
    size_t n, cap;
} Block;

static int block_add(Block *bl, const char *n, size_t nl, const char *v, size_t vl) {
    Hdr *h = grow(bl->h, bl->n, &bl->cap, sizeof(Hdr));
    if (!h) return FAIL;
    bl->h = h;
    Hdr *x = &bl->h[bl->n++];
    x->name = bl->arena.n;
    x->nlen = nl;
    CK(put(&bl->arena, n, nl));
    x->value = bl->arena.n;
    x->vlen = vl;
    return put(&bl->arena, v, vl);
}

static int ascii_text(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) return 0;
    return 1;
}

/* Headers the extension takes: printable ASCII, and the "true binary" form of -bin metadata
 * (a NUL, then any bytes). Anything else bails: the Python side reads other bytes as latin-1
 * text, which needs more JSON, regex and percent-decoding care than is copied here. */
static int header_ok(const char *n, size_t nl, const char *v, size_t vl) {
    if (!ascii_text(n, nl)) return 0;
    if (nl >= 4 && memcmp(n + nl - 4, "-bin", 4) == 0 && vl && v[0] == 0) return 1;
    return ascii_text(v, vl);
}

/* header_block._integer; BAIL where Python raises. */
static int hp_integer(const uint8_t *b, size_t len, size_t *pos, int prefix, uint64_t *out) {
    uint64_t mask = (1u << prefix) - 1, value = b[*pos] & mask;
    (*pos)++;
    if (value < mask) {
        *out = value;
        return OK;
    }
    int shift = 0;
    for (;;) {
        if (*pos >= len) BAILOUT;
        uint8_t c = b[(*pos)++];
        value += (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = value;
            return OK;
        }
        shift += 7;
        if (shift > 28) BAILOUT;
    }
}

/* hpack.huffman_table.decode_huffman, the same state machine. */
static int huffman(const uint8_t *s, size_t n, Buf *out) {
    if (!n) return OK;
    unsigned state = 0, flags = 0;
    for (size_t i = 0; i < n; i++) {
        for (int half = 0; half < 2; half++) {
            unsigned idx = state * 16 + (half ? (s[i] & 15) : (s[i] >> 4));
            state = G.huff_state[idx];
            flags = G.huff_flags[idx];
            if (flags & HUFFMAN_FAIL) BAILOUT;
            if (flags & HUFFMAN_EMIT_SYMBOL) {
                CK(buf_grow(out, 1));
                out->p[out->n++] = (char)G.huff_byte[idx];
            }
        }
    }
    if (!(flags & HUFFMAN_COMPLETE)) BAILOUT;
    return OK;
}

/* header_block._string: the literal's text appended to `out`. */
static int hp_string(const uint8_t *b, size_t len, size_t *pos, Buf *out) {
    if (*pos >= len) BAILOUT;
    int huff = b[*pos] & 0x80;
    uint64_t n;
    CK(hp_integer(b, len, pos, 7, &n));
    if (n > len - *pos) BAILOUT;
    if (huff)
        CK(huffman(b + *pos, (size_t)n, out));
    else
        CK(put(out, b + *pos, (size_t)n));
    *pos += (size_t)n;
    return OK;
}

static int table_get(const Table *t, uint64_t index, const char **n, size_t *nl, const char **v, size_t *vl) {
    if (index >= 1 && index <= (uint64_t)G.nstatic) {
        *n = G.static_name[index - 1];
        *nl = G.static_nlen[index - 1];
        *v = G.static_value[index - 1];
        *vl = G.static_vlen[index - 1];
        return 1;
    }
    uint64_t pos = index - (uint64_t)G.nstatic - 1;
    if (index > (uint64_t)G.nstatic && pos < t->count) {
        const Entry *x = &t->e[(t->head + pos) % t->cap];
        *n = x->s;
        *nl = x->nlen;
        *v = x->s + x->nlen;
        *vl = x->vlen;
        return 1;
    }
    return 0;
}


/* header_block.decode_block for a block that decodes cleanly; anything else bails. */
static int hp_block(const uint8_t *b, size_t len, Table *t, Block *bl, Buf *scratch) {
    size_t pos = 0;
    uint64_t expanded = 0;
    bl->n = 0;
    bl->arena.n = 0;
    while (pos < len) {
        uint8_t first = b[pos];
        uint64_t index;
        const char *n, *v;
        size_t nl, vl;
        if (first & 0x80) {
            CK(hp_integer(b, len, &pos, 7, &index));
            if (index == 0 || !table_get(t, index, &n, &nl, &v, &vl)) BAILOUT;
            CK(block_add(bl, n, nl, v, vl));
        } else if ((first & 0xe0) == 0x20) {
            CK(hp_integer(b, len, &pos, 5, &index));
            t->max_size = index < G.max_table ? index : G.max_table;
            table_evict(t);
            continue;
        } else {
            int prefix = (first & 0x40) ? 6 : 4, indexing = (first & 0x40) != 0;
            CK(hp_integer(b, len, &pos, prefix, &index));
            scratch->n = 0;
            if (index) {
                if (!table_get(t, index, &n, &nl, &v, &vl)) BAILOUT;
                CK(put(scratch, n, nl));
            } else {
                CK(hp_string(b, len, &pos, scratch));
            }
            size_t name_len = scratch->n;
            CK(hp_string(b, len, &pos, scratch));
            if (!header_ok(scratch->p, name_len, scratch->p + name_len, scratch->n - name_len)) BAILOUT;
            CK(block_add(bl, scratch->p, name_len, scratch->p + name_len, scratch->n - name_len));
            if (indexing) CK(table_add(t, scratch->p, name_len, scratch->p + name_len, scratch->n - name_len));
        }
        Hdr *h = &bl->h[bl->n - 1];
        if (!header_ok(bl->arena.p + h->name, h->nlen, bl->arena.p + h->value, h->vlen)) BAILOUT;
        expanded += h->nlen + h->vlen + 32;
        /* Python keeps the first MAX_HEADERS with a finding (and metadata is grouped by name in
         * O(n^2) here): more bail. */
        if (expanded > G.max_header_list || bl->n > G.max_headers) BAILOUT;
    }
    return OK;
}

#define HNAME(bl, i) ((bl)->arena.p + (bl)->h[i].name)
#define HVALUE(bl, i) ((bl)->arena.p + (bl)->h[i].value)

static int hname_is(const Block *bl, size_t i, const char *s) {
    size_t n = strlen(s);
    return bl->h[i].nlen == n && memcmp(HNAME(bl, i), s, n) == 0;
}

/* calls._value: the first header of that name, or -1. */
static long first_of(const Block *bl, const char *name) {
    for (size_t i = 0; i < bl->n; i++)
        if (hname_is(bl, i, name)) return (long)i;
    return -1;
}

/* decoder._headers' `values` dict: the last header of that name wins. */
static long last_of(const Block *bl, const char *name) {
    for (size_t i = bl->n; i-- > 0;)
        if (hname_is(bl, i, name)) return (long)i;
    return -1;
}

static int starts_with(const char *s, size_t n, const char *prefix) {
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

static int contains(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0) return 1;
    return 0;
}

/* ---- gRPC metadata (calls._metadata, status.binary_value) ------------------------------------ */

static const char *RESERVED[] = {":path", ":method", ":scheme", ":authority", ":status", "content-type", "te",
                                 "user-agent", "grpc-encoding", "grpc-accept-encoding", "grpc-timeout",
                                 "grpc-status", "grpc-message", "grpc-status-details-bin", "accept-encoding",
                                 "content-length", NULL};

static int reserved(const Block *bl, size_t i) {
    if (bl->h[i].nlen && HNAME(bl, i)[0] == ':') return 1;
    for (const char **r = RESERVED; *r; r++)
        if (hname_is(bl, i, *r)) return 1;
    return 0;
}

static int b64_digit(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* status.binary_value of a value header_ok let through: the bytes after a NUL ("true binary"),
 * or base64 as Python reads it (strip, pad with "=" to a multiple of 4, then [A-Za-z0-9+/]*={0,2}).
 * *ok is 0 when the value is neither (Python's None). */
static int binary_value(const char *s, size_t n, Buf *out, int *ok) {
    out->n = 0;
    *ok = 1;
    if (n && s[0] == 0) return put(out, s + 1, n - 1);
    size_t from = 0, to = n;
    while (from < to && s[from] == ' ') from++;
    while (to > from && s[to - 1] == ' ') to--;
    size_t digits = 0, pads = 0;
    for (size_t i = from; i < to; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=')
            pads++;
        else if (b64_digit(c) >= 0 && !pads)
            digits++;
        else {
            *ok = 0;
            return OK;
        }
    }
    pads += (4 - (to - from) % 4) % 4;
    if (pads > 2) {
        *ok = 0;
        return OK;
    }
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = from; i < from + digits; i++) {
        acc = (acc << 6) | (uint32_t)b64_digit((unsigned char)s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            uint8_t byte = (uint8_t)(acc >> bits);
            CK(put(out, &byte, 1));
        }
    }
    return OK;
}

/* A -bin metadata value: hex of its bytes, or the value as it is when it is not base64. */
static int put_bin(Buf *b, const char *s, size_t n) {
    Buf raw = {0};
    int ok, r = binary_value(s, n, &raw, &ok);
    if (r == OK) r = ok ? put_hex(b, (const uint8_t *)raw.p, raw.n) : put_jstr(b, s, n);
    buf_free(&raw);
    return r;
}

static int is_bin(const Block *bl, size_t i) {
    size_t n = bl->h[i].nlen;
    return n >= 4 && memcmp(HNAME(bl, i) + n - 4, "-bin", 4) == 0;
}

static int put_md_value(Buf *b, const Block *bl, size_t i) {
    if (is_bin(bl, i)) return put_bin(b, HVALUE(bl, i), bl->h[i].vlen);
    return put_jstr(b, HVALUE(bl, i), bl->h[i].vlen);
}

/* calls._metadata rendered as a JSON object. */
static int render_metadata(const Block *bl, Buf *b) {
    b->n = 0;
    CK(PUTS(b, "{"));
    int first = 1;
    for (size_t i = 0; i < bl->n; i++) {
        if (reserved(bl, i)) continue;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = bl->h[j].nlen == bl->h[i].nlen && memcmp(HNAME(bl, j), HNAME(bl, i), bl->h[i].nlen) == 0;
        if (seen) continue;
        size_t count = 0;
        for (size_t j = i; j < bl->n; j++)
            count += bl->h[j].nlen == bl->h[i].nlen && memcmp(HNAME(bl, j), HNAME(bl, i), bl->h[i].nlen) == 0;
        if (!first) CK(PUTS(b, ", "));
        first = 0;
        CK(put_jstr(b, HNAME(bl, i), bl->h[i].nlen));
        CK(PUTS(b, ": "));
        if (count == 1) {
            CK(put_md_value(b, bl, i));
            continue;
        }
        CK(PUTS(b, "["));
        int f2 = 1;
        for (size_t j = i; j < bl->n; j++) {
            if (!(bl->h[j].nlen == bl->h[i].nlen && memcmp(HNAME(bl, j), HNAME(bl, i), bl->h[i].nlen) == 0))
                continue;
            if (!f2) CK(PUTS(b, ", "));
            f2 = 0;
            CK(put_md_value(b, bl, j));
        }
        CK(PUTS(b, "]"));
    }
    return PUTS(b, "}");
}

/* ---- schema-less protobuf (wire.py + schema.raw_content) ------------------------------------ */

enum { K_VARINT, K_FIXED64, K_FIXED32, K_MESSAGE, K_GROUP, K_STRING, K_PACKED, K_BYTES };

typedef struct {
    uint32_t number;
    uint8_t kind;
    uint64_t value;
    const uint8_t *p; /* LEN / group bytes */
    size_t len;
    int32_t child, next; /* first child, next sibling (-1: none) */
} PbField;

typedef struct {
    PbField *f;
    size_t n, cap;
    long budget; /* wire._Budget.left: fields kept (an abandoned reading gives its own back) */
    long work;   /* wire._Budget.work: fields read, abandoned readings included */
    int bail;    /* something the Python side reads differently (a varint past 64 bits) */
} Pb;

#define WIRE_ERR 2   /* wire.WireError: the bytes are not a message at this level */
#define WIRE_LIMIT 3 /* wire.WireLimit: MAX_FIELDS or MAX_DEPTH stopped the reading */

/* wire.read_varint. Past 64 bits, Python's int goes on: a tag or a length that large (`bound`)
 * fails the checks that follow it there too (field number out of range, length past the end), so
 * it is an error here; a value that large would be shown, so it bails. */
static int pb_varint(const uint8_t *d, size_t *pos, size_t end, uint64_t *out, Pb *pb, int bound) {
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (*pos >= end) return WIRE_ERR;
        uint8_t b = d[(*pos)++];
        if (i == 9 && (b & 0x7f) > 1) {
            if (bound) return WIRE_ERR;
            pb->bail = 1;
        }
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return OK;
        }
    }
    return WIRE_ERR;
}

static int pb_new(Pb *pb, int32_t *at) {
    PbField *f = grow(pb->f, pb->n, &pb->cap, sizeof(PbField));
    if (!f) return FAIL;
    pb->f = f;
    if (pb->n >= INT32_MAX) return WIRE_ERR;
    *at = (int32_t)pb->n++;
    memset(&pb->f[*at], 0, sizeof(PbField));
    pb->f[*at].child = pb->f[*at].next = -1;
    return OK;
}

static int printable(const uint8_t *s, size_t n, int *yes) {
    int ascii = 1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x80) {
            ascii = 0;
            break;
        }
        if ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') || s[i] == 0x7f) {
            *yes = 0;
            return OK;
        }
    }
    if (ascii) {
        *yes = 1;
        return OK;
    }
    /* Non-ASCII: Python's own UTF-8 decoder and str.isprintable, as wire._printable. */
    PyObject *u = PyUnicode_DecodeUTF8((const char *)s, (Py_ssize_t)n, NULL);
    if (!u) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return FAIL;
        PyErr_Clear();
        *yes = 0;
        return OK;
    }
    int kind = PyUnicode_KIND(u);
    const void *data = PyUnicode_DATA(u);
    *yes = 1;
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(u); i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (!(Py_UNICODE_ISPRINTABLE(ch) || ch == '\t' || ch == '\n' || ch == '\r')) {
            *yes = 0;
            break;
        }
    }
    Py_DECREF(u);
    return OK;
}

static int pb_fields(const uint8_t *d, size_t start, size_t end, long depth, Pb *pb, uint32_t group,
                     int32_t *head, size_t *after);

/* wire._classify */
static int pb_classify(const uint8_t *d, int32_t at, long depth, Pb *pb) {
    PbField *f = &pb->f[at];
    size_t start = (size_t)(f->p - d), end = start + f->len;
    int message = 0;
    if (end > start && depth < G.max_depth && pb->work > 0) { /* else MAX_DEPTH or MAX_WORK */
        long saved = pb->budget;
        size_t mark = pb->n, after;
        int32_t head = -1;
        int r = pb_fields(d, start, end, depth + 1, pb, 0, &head, &after);
        if (r == FAIL) return FAIL;
        f = &pb->f[at]; /* pb->f may have moved */
        if (r == OK) {
            message = 1;
            f->child = head;
        } else {
            pb->n = mark;
            pb->budget = saved;
        }
    }
    if (message) {
        f->kind = K_MESSAGE;
        return OK;
    }
    int text;
    CK(printable(f->p, f->len, &text));
    f = &pb->f[at];
    if (text)
        f->kind = K_STRING;
    else if (end > start && f->p[f->len - 1] < 0x80)
        f->kind = K_PACKED;
    else
        f->kind = K_BYTES;
    return OK;
}

/* wire._fields: OK, WIRE_ERR or FAIL; the fields are linked from *head. */
static int pb_fields(const uint8_t *d, size_t start, size_t end, long depth, Pb *pb, uint32_t group,
                     int32_t *head, size_t *after) {
    size_t pos = start;
    int32_t last = -1;
    *head = -1;
    while (pos < end) {
        pb->work--;
        if (--pb->budget < 0) return WIRE_LIMIT;
        uint64_t tag, v;
        CK(pb_varint(d, &pos, end, &tag, pb, 1));
        uint64_t number = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        if (number < 1 || number > (uint64_t)G.max_field_number) return WIRE_ERR;
        if (wt == 4) { /* end group */
            if (number != group) return WIRE_ERR;
            *after = pos;
            return OK;
        }
        int32_t at;
        if (wt == 0) {
            CK(pb_varint(d, &pos, end, &v, pb, 0));
            CK(pb_new(pb, &at));
            pb->f[at].kind = K_VARINT;
            pb->f[at].value = v;
        } else if (wt == 1 || wt == 5) {
            size_t w = wt == 1 ? 8 : 4;
            if (pos + w > end) return WIRE_ERR;
            v = 0;
            for (size_t i = 0; i < w; i++) v |= (uint64_t)d[pos + i] << (8 * i);
            pos += w;
            CK(pb_new(pb, &at));
            pb->f[at].kind = wt == 1 ? K_FIXED64 : K_FIXED32;
            pb->f[at].value = v;
        } else if (wt == 2) {
            uint64_t length;
            CK(pb_varint(d, &pos, end, &length, pb, 1));
            if (length > end - pos) return WIRE_ERR;
            CK(pb_new(pb, &at));
            pb->f[at].p = d + pos;
            pb->f[at].len = (size_t)length;
            pb->f[at].number = (uint32_t)number;
            CK(pb_classify(d, at, depth, pb));
            pos += (size_t)length;
        } else if (wt == 3) {
            if (depth >= G.max_depth) return WIRE_LIMIT;
            int32_t child;
            size_t gend;
            CK(pb_fields(d, pos, end, depth + 1, pb, (uint32_t)number, &child, &gend));
            CK(pb_new(pb, &at));
            pb->f[at].kind = K_GROUP;
            pb->f[at].child = child;
            pos = gend;
        } else {
            return WIRE_ERR;
        }
        pb->f[at].number = (uint32_t)number;
        if (last < 0)
            *head = at;
        else
            pb->f[last].next = at;
        last = at;
    }
    if (group) return WIRE_ERR;
    *after = pos;
    return OK;
}

typedef struct {
    uint32_t number;
    int32_t at;
    size_t order;
} Sib;

static int sib_by_number(const void *a, const void *b) {
    const Sib *x = a, *y = b;
    if (x->number != y->number) return x->number < y->number ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

static int sib_by_order(const void *a, const void *b) {
    const Sib *x = a, *y = b;
    return x->order < y->order ? -1 : (x->order > y->order);
}

static int pb_render(const Pb *pb, int32_t head, Buf *b);

static int pb_value(const Pb *pb, int32_t at, Buf *b) {
    const PbField *f = &pb->f[at];
    switch (f->kind) {
        case K_VARINT:
        case K_FIXED64:
        case K_FIXED32:
            return put_u64(b, f->value);
        case K_MESSAGE:
        case K_GROUP:
            return pb_render(pb, f->child, b);
        case K_STRING:
            return put_jstr(b, (const char *)f->p, f->len);
        default:
            return put_hex(b, f->p, f->len);
    }
}

/* schema.raw_content as JSON: {"number": value or [values]} in order of first appearance. */
static int pb_render(const Pb *pb, int32_t head, Buf *b) {
    size_t n = 0;
    for (int32_t i = head; i >= 0; i = pb->f[i].next) n++;
    CK(PUTS(b, "{"));
    if (!n) return PUTS(b, "}");
    Sib *s = malloc(n * sizeof(Sib));
    if (!s) {
        PyErr_NoMemory();
        return FAIL;
    }
    size_t k = 0;
    for (int32_t i = head; i >= 0; i = pb->f[i].next, k++) s[k] = (Sib){pb->f[i].number, i, k};
    /* group equal numbers (stable by position), then order the groups by their first field */
    qsort(s, n, sizeof(Sib), sib_by_number);
    size_t groups = 0;
    Sib *g = malloc(n * sizeof(Sib));
    if (!g) {
        free(s);
        PyErr_NoMemory();
        return FAIL;
    }
    for (size_t i = 0; i < n; i++)
        if (i == 0 || s[i].number != s[i - 1].number) {
            g[groups] = (Sib){s[i].number, (int32_t)i, s[i].order}; /* .at: index into s */
            groups++;
        }
    qsort(g, groups, sizeof(Sib), sib_by_order);
    int r = OK;
    for (size_t gi = 0; gi < groups && r == OK; gi++) {
        size_t from = (size_t)g[gi].at, to = from;
        while (to < n && s[to].number == s[from].number) to++;
        if (gi) r = PUTS(b, ", ");
        if (r == OK) r = PUTS(b, "\"");
        if (r == OK) r = put_u64(b, s[from].number);
        if (r == OK) r = PUTS(b, "\": ");
        if (r == OK && to - from > 1) r = PUTS(b, "[");
        for (size_t j = from; j < to && r == OK; j++) {
            if (j > from) r = PUTS(b, ", ");
            if (r == OK) r = pb_value(pb, s[j].at, b);
        }
        if (r == OK && to - from > 1) r = PUTS(b, "]");
    }
    free(s);
    free(g);
    if (r) return r;
    return PUTS(b, "}");
}

/* wire.decode's salvage of a malformed message: the fields before the first bad one, each read
 * alone (wire._fields_one) with a fresh budget. */
static int pb_salvage(Pb *pb, const uint8_t *d, size_t n, int32_t *head) {
    int32_t last = -1;
    size_t pos = 0;
    pb->n = 0;
    *head = -1;
    pb->budget = G.max_fields; /* one allowance for all the fields salvaged, and the work left */
    while (pos < n) {
        size_t q = pos, end;
        uint64_t tag, v;
        if (pb_varint(d, &q, n, &tag, pb, 1) != OK) break;
        unsigned wt = (unsigned)(tag & 7);
        if (wt == 0) {
            if (pb_varint(d, &q, n, &v, pb, 0) != OK) break;
            end = q;
        } else if (wt == 1 || wt == 5) {
            end = q + (wt == 1 ? 8 : 4);
        } else if (wt == 2) {
            if (pb_varint(d, &q, n, &v, pb, 1) != OK || v > n - q) break;
            end = q + (size_t)v;
        } else {
            break;
        }
        if (end > n) break;
        int32_t one;
        size_t after;
        int r = pb_fields(d, pos, end, 0, pb, 0, &one, &after);
        if (r == FAIL) return FAIL;
        if (r != OK) break;
        if (last < 0)
            *head = one;
        else
            pb->f[last].next = one;
        last = one;
        pos = end;
    }
    return OK;
}

/* schema.decode_message(data, None).content as JSON (the fields read before any error). */
static int pb_message(Pb *pb, const uint8_t *d, size_t n, Buf *b) {
    pb->n = 0;
    pb->budget = G.max_fields;
    pb->work = G.max_work;
    pb->bail = 0;
    int32_t head;
    size_t after;
    int r = pb_fields(d, 0, n, 0, pb, 0, &head, &after);
    if (r == FAIL) return FAIL;
    if (r != OK && !pb->bail) CK(pb_salvage(pb, d, n, &head));
    if (pb->bail) BAILOUT;
    return b ? pb_render(pb, head, b) : OK;
}

/* ---- connections, streams and calls (decoder.py, messages.py, calls.py) ------------------- */

typedef struct Stream {
    uint32_t sid;
    int grpc; /* -1 unknown (None), 0, 1 */
    int json; /* content_type contains "json" */
    int have_request, have_response;
    int ended[2];
    Buf deframe[2];
    Buf encoding[2]; /* grpc-encoding each side declared; empty: identity */
    struct Stream *older, *newer; /* the flow's open streams, oldest first (decoder.Connection.streams) */
} Stream;

/* calls.Kept: one direction's messages as the row keeps them. The first ones are rendered into
 * `first`; the last ones are a ring of `ring_cap` slots from `head`. */
typedef struct {
    Buf first; /* rendered items joined by ", " */
    uint64_t nfirst, first_bytes;
    int closed;
    Buf *ring;
    uint64_t *ring_bytes;
    int64_t *ring_frame;
    size_t ring_cap, head, count;
    uint64_t last_bytes;
    int64_t total, omitted, omitted_frame;
} Kept;

typedef struct Call {
    int32_t flow;
    uint32_t sid;
    int64_t created; /* packet index where it was first seen */
    double start, end;
    int has_end;
    const char *ended_by;
    int has_req, has_resp;
    int server_done; /* the server ended its side: END_STREAM or RST_STREAM */
    int awaiting;    /* calls.Call.awaiting_server: reset by the client, the server's frames may follow */
    uint32_t await_mark;
    Buf path;
    int has_path;
    Buf req_md, resp_md, trl_md;
    int has_status;
    int64_t status;
    const char *status_from; /* "trailers", "inferred" or NULL */
    int has_rst;
    uint32_t rst_error;
    Buf message; /* rendered JSON string, or empty for null */
    Buf details; /* rendered status details (JSON object or null), or empty for null */
    int has_timeout;
    double timeout;
    Kept kept[2]; /* requests (side 0, the client's), responses */
    int64_t given_up; /* the frame where MAX_OPEN_CALLS gave it up; 0: it was not */
    int in_open;
    struct Call *open_prev, *open_next; /* the flow's open calls, oldest first (calls._Flow.open) */
    struct Call *aw_prev, *aw_next;     /* the flow's awaiting calls, in the order of their resets */
} Call;

typedef struct {
    int started;
    Buf pending; /* bytes of a frame not complete yet */
    Table table;
} Direction;

typedef struct {
    int seen, bailed;
    const char *why;
    Direction dir[2];
    Map streams; /* sid -> Stream* */
    Map calls;   /* sid -> Call* (calls not drained yet, not given up) */
    uint32_t last_client_stream;
    size_t nawaiting; /* calls of this flow with `awaiting` set */
    Stream *oldest, *newest;
    size_t nstreams;
    Call *open_head, *open_tail, *aw_head, *aw_tail;
    size_t nopen;
} Flow;

typedef struct {
    PyObject_HEAD
    int emit;
    long drain_every;
    int64_t last; /* last packet index fed, -1 before any */
    Flow *flows;
    Py_ssize_t nflows;
    Call **order; /* calls not drained yet, in the order they were first seen */
    size_t norder, order_cap;
    Block block;
    Buf scratch, row;
    Pb pb;
    PyObject *clients; /* per flow, its rows' "client" value as JSON text (str) */
    PyObject *out;     /* list of rows of the current feed */
} Decoder;

static void kept_free(Kept *k) {
    buf_free(&k->first);
    for (size_t j = 0; j < k->ring_cap; j++) buf_free(&k->ring[j]);
    free(k->ring);
    free(k->ring_bytes);
    free(k->ring_frame);
}

static void call_free(Call *c) {
    buf_free(&c->path);
    buf_free(&c->req_md);
    buf_free(&c->resp_md);
    buf_free(&c->trl_md);
    buf_free(&c->message);
    buf_free(&c->details);
    kept_free(&c->kept[0]);
    kept_free(&c->kept[1]);
    free(c);
}

/* Kept.add: `item` is the rendered item (NULL in the check run), `size` the message's bytes. */
static int kept_add(Kept *k, const Buf *item, uint64_t size, int64_t frame) {
    k->total++;
    if (!k->closed) {
        if (k->nfirst < G.messages_first && (k->first_bytes + size <= G.message_bytes || !k->nfirst)) {
            if (item) {
                if (k->nfirst) CK(PUTS(&k->first, ", "));
                CK(put(&k->first, item->p, item->n));
            }
            k->nfirst++;
            k->first_bytes += size;
            return OK;
        }
        k->closed = 1;
    }
    if (!k->ring_cap) { /* the last ones, and one more before it is popped */
        size_t cap = (size_t)G.messages_last + 1;
        k->ring = calloc(cap, sizeof(Buf));
        k->ring_bytes = calloc(cap, sizeof(uint64_t));
        k->ring_frame = calloc(cap, sizeof(int64_t));
        if (!k->ring || !k->ring_bytes || !k->ring_frame) {
            free(k->ring);
            free(k->ring_bytes);
            free(k->ring_frame);
            k->ring = NULL;
            k->ring_bytes = NULL;
            k->ring_frame = NULL;
            PyErr_NoMemory();
            return FAIL;
        }
        k->ring_cap = cap;
    }
    if (k->count == k->ring_cap) { /* only when the limits changed under a live decoder */
        k->last_bytes -= k->ring_bytes[k->head];
        if (!k->omitted++) k->omitted_frame = k->ring_frame[k->head];
        k->head = (k->head + 1) % k->ring_cap;
        k->count--;
    }
    size_t at = (k->head + k->count) % k->ring_cap;
    k->ring[at].n = 0;
    if (item) CK(put(&k->ring[at], item->p, item->n));
    k->ring_bytes[at] = size;
    k->ring_frame[at] = frame;
    k->count++;
    k->last_bytes += size;
    while (k->count > G.messages_last || (k->last_bytes > G.message_bytes && k->count > 1)) {
        k->last_bytes -= k->ring_bytes[k->head];
        if (!k->omitted++) k->omitted_frame = k->ring_frame[k->head];
        k->head = (k->head + 1) % k->ring_cap;
        k->count--;
    }
    return OK;
}

/* The kept items of a direction as a JSON list's inside. */
static int put_kept(Buf *b, const Kept *k) {
    CK(put(b, k->first.p, k->first.n));
    for (size_t j = 0; j < k->count; j++) {
        const Buf *x = &k->ring[(k->head + j) % k->ring_cap];
        if (k->nfirst || j) CK(PUTS(b, ", "));
        CK(put(b, x->p, x->n));
    }
    return OK;
}

static void stream_free(Stream *s) {
    for (int k = 0; k < 2; k++) {
        buf_free(&s->deframe[k]);
        buf_free(&s->encoding[k]);
    }
    free(s);
}

static void flow_free(Flow *f) {
    for (int k = 0; k < 2; k++) {
        buf_free(&f->dir[k].pending);
        table_free(&f->dir[k].table);
    }
    for (size_t i = 0; i < f->streams.cap; i++)
        if (f->streams.state[i] == 1) stream_free(f->streams.vals[i]);
    map_free(&f->streams);
    map_free(&f->calls); /* the calls themselves are owned by Decoder.order */
}

static void stream_drop(Flow *f, uint32_t sid) {
    void **v = map_get(&f->streams, sid);
    if (!v) return;
    Stream *s = *v;
    if (s->older) s->older->newer = s->newer; else f->oldest = s->newer;
    if (s->newer) s->newer->older = s->older; else f->newest = s->older;
    f->nstreams--;
    stream_free(s);
    map_del(&f->streams, sid);
}

/* Connection.stream: a new one past MAX_OPEN_STREAMS forgets the oldest. */
static Stream *stream_get(Flow *f, uint32_t sid, int *err) {
    void **v = map_get(&f->streams, sid);
    if (v) return *v;
    if (f->nstreams >= G.max_streams && f->oldest) stream_drop(f, f->oldest->sid);
    Stream *s = calloc(1, sizeof(Stream));
    if (!s) {
        PyErr_NoMemory();
        *err = FAIL;
        return NULL;
    }
    s->sid = sid;
    s->grpc = -1;
    if (map_put(&f->streams, sid, s)) {
        free(s);
        *err = FAIL;
        return NULL;
    }
    s->older = f->newest;
    if (f->newest) f->newest->newer = s; else f->oldest = s;
    f->newest = s;
    f->nstreams++;
    return s;
}

/* calls.Call.done: the row may be written. */
static int call_done(const Call *c) { return c->given_up || (c->has_end && !c->awaiting); }

static void open_unlink(Flow *f, Call *c) {
    if (!c->in_open) return;
    if (c->open_prev) c->open_prev->open_next = c->open_next; else f->open_head = c->open_next;
    if (c->open_next) c->open_next->open_prev = c->open_prev; else f->open_tail = c->open_prev;
    c->open_prev = c->open_next = NULL;
    c->in_open = 0;
    f->nopen--;
}

static void await_unlink(Flow *f, Call *c) {
    if (!c->awaiting) return;
    if (c->aw_prev) c->aw_prev->aw_next = c->aw_next; else f->aw_head = c->aw_next;
    if (c->aw_next) c->aw_next->aw_prev = c->aw_prev; else f->aw_tail = c->aw_prev;
    c->aw_prev = c->aw_next = NULL;
    c->awaiting = 0;
    f->nawaiting--;
}

/* CallAnalysis._settle */
static void settle(Flow *f, Call *c) {
    if (call_done(c)) open_unlink(f, c);
}

/* CallAnalysis._give_up: the oldest open call of a full connection is no longer followed. */
static void give_up(Flow *f, Call *c, int64_t frame) {
    c->given_up = frame;
    if (!c->has_end) c->ended_by = "calls_limit";
    await_unlink(f, c);
    open_unlink(f, c);
    map_del(&f->calls, c->sid);
}

static Call *call_get(Decoder *d, Flow *f, int32_t fid, uint32_t sid, int64_t i, double t, int *err) {
    void **v = map_get(&f->calls, sid);
    if (v) return *v;
    if (f->nopen >= G.max_open_calls && f->open_head) give_up(f, f->open_head, i + 1);
    Call *c = calloc(1, sizeof(Call));
    if (!c) {
        PyErr_NoMemory();
        *err = FAIL;
        return NULL;
    }
    c->flow = fid;
    c->sid = sid;
    c->created = i;
    c->start = t;
    Call **o = grow(d->order, d->norder, &d->order_cap, sizeof(Call *));
    if (o) d->order = o;
    if (!o || map_put(&f->calls, sid, c)) {
        free(c);
        *err = FAIL;
        return NULL;
    }
    d->order[d->norder++] = c;
    c->open_prev = f->open_tail;
    if (f->open_tail) f->open_tail->open_next = c; else f->open_head = c;
    f->open_tail = c;
    c->in_open = 1;
    f->nopen++;
    return c;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A JSON string of bytes.decode("utf-8", "replace"). */
static int put_utf8_replace(Buf *b, const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n && s[i] < 0x80) i++;
    if (i == n) return put_jstr(b, (const char *)s, n);
    PyObject *u = PyUnicode_DecodeUTF8((const char *)s, (Py_ssize_t)n, "replace");
    Py_ssize_t len;
    const char *utf8 = u ? PyUnicode_AsUTF8AndSize(u, &len) : NULL;
    int r = utf8 ? put_jstr(b, utf8, (size_t)len) : FAIL;
    Py_XDECREF(u);
    return r;
}

/* status.grpc_message: percent-decoded UTF-8, invalid sequences replaced. */
static int put_grpc_message(Buf *b, const char *s, size_t n) {
    Buf raw = {0};
    int r = OK;
    for (size_t i = 0; i < n && r == OK; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
            char c = (char)(hi * 16 + lo);
            r = put(&raw, &c, 1);
            i += 2;
        } else {
            r = put(&raw, s + i, 1);
        }
    }
    if (r == OK) r = put_utf8_replace(b, (const uint8_t *)(raw.p ? raw.p : ""), raw.n);
    buf_free(&raw);
    return r;
}

static const char *STATUS_NAMES[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                     "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                     "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                     "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
static const char *ERROR_CODES[] = {"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
                                    "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
                                    "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
                                    "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"};

/* status.parse_status: all digits, at most 10 of them. */
static int parse_status(const char *s, size_t n, int64_t *out) {
    if (n == 0 || n > 10) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* status.grpc_timeout: ^(\d{1,8})([HMSmun])$ in seconds. */
static int parse_timeout(const char *s, size_t n, double *out) {
    if (n < 2 || n > 9) return 0;
    double unit;
    switch (s[n - 1]) {
        case 'H': unit = 3600.0; break;
        case 'M': unit = 60.0; break;
        case 'S': unit = 1.0; break;
        case 'm': unit = 1e-3; break;
        case 'u': unit = 1e-6; break;
        case 'n': unit = 1e-9; break;
        default: return 0;
    }
    long v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = (double)v * unit;
    return 1;
}

static int len_kind(const PbField *f) { return f->kind >= K_MESSAGE && f->kind != K_GROUP; }

/* status.status_details of a grpc-status-details-bin value (google.rpc.Status read by field
 * number), rendered as JSON: keys in the order they were first set, later fields overwriting. */
static int status_details(Decoder *d, const char *value, size_t vlen, Buf *out) {
    Buf raw = {0};
    int ok, r = binary_value(value, vlen, &raw, &ok);
    out->n = 0;
    if (r != OK || !ok) {
        buf_free(&raw);
        return r != OK ? r : PUTS(out, "null");
    }
    Pb *pb = &d->pb;
    pb->n = 0;
    pb->budget = G.max_fields;
    pb->work = G.max_work;
    pb->bail = 0;
    int32_t head;
    size_t after;
    r = pb_fields((const uint8_t *)raw.p, 0, raw.n, 0, pb, 0, &head, &after);
    if (r == WIRE_LIMIT) pb->bail = 1; /* wire.decode gives the fields salvaged then, not None */
    if (r == FAIL || pb->bail) {
        buf_free(&raw);
        if (r == FAIL) return FAIL;
        BAILOUT;
    }
    if (r != OK) {
        buf_free(&raw);
        return PUTS(out, "null");
    }
    int32_t code = -1, message = -1, details = 0;
    int code_first = 0; /* "code" was set before "message" */
    for (int32_t i = head; i >= 0; i = pb->f[i].next) {
        const PbField *f = &pb->f[i];
        if (f->number == 1 && f->kind == K_VARINT) {
            if (code < 0) code_first = message < 0;
            code = i;
        } else if (f->number == 2 && len_kind(f)) {
            message = i;
        } else if (f->number == 3 && len_kind(f)) {
            details++;
            for (int32_t g = f->kind == K_MESSAGE ? f->child : -1; g >= 0; g = pb->f[g].next)
                if ((pb->f[g].number == 1 || pb->f[g].number == 2) && pb->f[g].kind == K_GROUP) {
                    buf_free(&raw);
                    BAILOUT; /* Python would read the group's bytes with its end tag */
                }
        }
    }
    r = PUTS(out, "{");
    for (int pass = 0; pass < 2 && r == OK; pass++) {
        int want_code = pass == 0 ? code_first : !code_first;
        int32_t at = want_code ? code : message;
        if (at < 0) continue;
        if (out->n > 1) r = PUTS(out, ", ");
        if (r == OK && want_code) {
            r = PUTS(out, "\"code\": ");
            if (r == OK) r = put_i64(out, (int32_t)(uint32_t)pb->f[at].value);
        } else if (r == OK) {
            r = PUTS(out, "\"message\": ");
            if (r == OK) r = put_utf8_replace(out, pb->f[at].p, pb->f[at].len);
        }
    }
    if (r == OK && details) {
        r = out->n > 1 ? PUTS(out, ", \"details\": [") : PUTS(out, "\"details\": [");
        int n = 0;
        for (int32_t i = head; i >= 0 && r == OK; i = pb->f[i].next) {
            const PbField *f = &pb->f[i];
            if (!(f->number == 3 && len_kind(f))) continue;
            int32_t type_url = -1, val = -1;
            int url_first = 0;
            for (int32_t g = f->kind == K_MESSAGE ? f->child : -1; g >= 0; g = pb->f[g].next) {
                const PbField *x = &pb->f[g];
                if (x->number == 1 && len_kind(x)) {
                    if (type_url < 0) url_first = val < 0;
                    type_url = g;
                } else if (x->number == 2 && len_kind(x)) {
                    val = g;
                }
            }
            if (n++) r = PUTS(out, ", ");
            if (r == OK) r = PUTS(out, "{");
            int items = 0;
            for (int pass = 0; pass < 2 && r == OK; pass++) {
                int want_url = pass == 0 ? url_first : !url_first;
                int32_t at = want_url ? type_url : val;
                if (at < 0) continue;
                if (items++) r = PUTS(out, ", ");
                if (r == OK && want_url) {
                    r = PUTS(out, "\"type_url\": ");
                    if (r == OK) r = put_utf8_replace(out, pb->f[at].p, pb->f[at].len);
                } else if (r == OK) {
                    r = PUTS(out, "\"value\": ");
                    if (r == OK) r = put_hex(out, pb->f[at].p, pb->f[at].len);
                }
            }
            if (r == OK) r = PUTS(out, "}");
        }
        if (r == OK) r = PUTS(out, "]");
    }
    if (r == OK) r = PUTS(out, "}");
    buf_free(&raw);
    return r;
}

/* status.deadline_elapsed */
static int deadline_elapsed(double elapsed, double timeout) {
    return elapsed >= timeout - (timeout * G.timeout_rounding + G.timeout_granularity);
}

static int is(const char *a, const char *b) { return a && strcmp(a, b) == 0; }

/* CallAnalysis._status */
static int call_status(Decoder *d, Call *c, const Block *bl, double t, const char *how) {
    if (d->emit) CK(render_metadata(bl, &c->trl_md));
    long i = first_of(bl, "grpc-status");
    int64_t status;
    int has = i >= 0 && parse_status(HVALUE(bl, i), bl->h[i].vlen, &status);
    if (has || !is(c->status_from, "inferred")) { /* trailers without a status keep an inferred one */
        c->has_status = has;
        if (has) c->status = status;
        c->status_from = has ? "trailers" : NULL;
    }
    i = first_of(bl, "grpc-message");
    c->message.n = 0;
    if (i >= 0 && d->emit) CK(put_grpc_message(&c->message, HVALUE(bl, i), bl->h[i].vlen));
    i = first_of(bl, "grpc-status-details-bin");
    if (i >= 0) CK(status_details(d, HVALUE(bl, i), bl->h[i].vlen, &c->details));
    if (is(c->ended_by, "rst_stream")) return OK; /* trailers the server sent before it read the reset */
    c->end = t;
    c->has_end = 1;
    c->ended_by = how;
    return OK;
}

static void stream_end(Flow *f, Stream *s, uint32_t sid, int side) {
    s->ended[side] = 1;
    if (s->ended[0] && s->ended[1]) stream_drop(f, sid);
}

/* A HEADERS frame with its whole block: decoder._headers, then CallAnalysis._frame. */
static int on_headers(Decoder *d, Flow *f, int32_t fid, int side, uint32_t sid, int end_stream,
                      const uint8_t *blk, size_t len, int64_t i, double t) {
    Block *bl = &d->block;
    int err = OK;
    CK(hp_block(blk, len, &f->dir[side].table, bl, &d->scratch));
    if (side == 1 && !f->dir[0].started) {
        /* Before the client's preface, a request block from the server's side would make the Python
         * decoder take that side for the client (sides.block_from_client): leave it to Python. */
        for (size_t k = 0; k < bl->n; k++) {
            if (hname_is(bl, k, ":status")) break;
            if (hname_is(bl, k, ":method") || hname_is(bl, k, ":path") || hname_is(bl, k, ":scheme") ||
                hname_is(bl, k, ":authority") || hname_is(bl, k, ":protocol"))
                BAILOUT;
        }
    }
    Stream *s = stream_get(f, sid, &err);
    if (!s) return err;
    long ct = last_of(bl, "content-type"), enc = last_of(bl, "grpc-encoding");
    if (ct >= 0 && contains(HVALUE(bl, ct), bl->h[ct].vlen, "grpc-web")) BAILOUT;
    if (enc >= 0) {
        s->encoding[side].n = 0;
        CK(put(&s->encoding[side], HVALUE(bl, enc), bl->h[enc].vlen));
    }
    if (side == 0) {
        if (!s->have_request) {
            s->have_request = 1;
            if (ct >= 0) {
                s->json = contains(HVALUE(bl, ct), bl->h[ct].vlen, "json");
                s->grpc = starts_with(HVALUE(bl, ct), bl->h[ct].vlen, "application/grpc");
            }
        }
    } else if (!s->have_response) {
        s->have_response = 1;
        if (ct >= 0 && s->grpc < 0) s->grpc = starts_with(HVALUE(bl, ct), bl->h[ct].vlen, "application/grpc");
    }
    int known = map_get(&f->calls, sid) != NULL;
    long fct = first_of(bl, "content-type");
    int grpc_ct = fct >= 0 && starts_with(HVALUE(bl, fct), bl->h[fct].vlen, "application/grpc");
    if (side == 0) {
        if (known || grpc_ct) {
            Call *c = call_get(d, f, fid, sid, i, t, &err);
            if (!c) return err;
            if (!c->has_req) {
                c->has_req = bl->n > 0;
                if (d->emit) CK(render_metadata(bl, &c->req_md));
                long p = first_of(bl, ":path");
                c->has_path = p >= 0;
                c->path.n = 0;
                if (p >= 0) CK(put(&c->path, HVALUE(bl, p), bl->h[p].vlen));
                long to = first_of(bl, "grpc-timeout");
                c->has_timeout = to >= 0 && bl->h[to].vlen && parse_timeout(HVALUE(bl, to), bl->h[to].vlen, &c->timeout);
            }
        }
    } else {
        long gs = first_of(bl, "grpc-status");
        if (known || grpc_ct || gs >= 0) {
            Call *c = call_get(d, f, fid, sid, i, t, &err);
            if (!c) return err;
            if (end_stream) {
                c->server_done = 1;
                int only = c->has_req && !c->has_resp && c->kept[1].total == 0; /* Trailers-Only */
                CK(call_status(d, c, bl, t, only ? "trailers-only" : "trailers"));
            } else if (!c->has_resp && gs < 0) {
                c->has_resp = bl->n > 0;
                if (d->emit) CK(render_metadata(bl, &c->resp_md));
            } else {
                CK(call_status(d, c, bl, t, "trailers"));
            }
            settle(f, c);
        }
    }
    if (end_stream) stream_end(f, s, sid, side);
    return OK;
}

/* A compressed message inflated by messages.decompress (the Python function itself: its limits
 * and its zlib): a new reference to the bytes, or to None when they do not inflate; NULL on error. */
static PyObject *inflate(Stream *s, int side, const uint8_t *m, size_t n) {
    const Buf *e = &s->encoding[side];
    PyObject *r = PyObject_CallFunction(G.decompress, "y#s#", (const char *)m, (Py_ssize_t)n,
                                        e->n ? e->p : "identity", (Py_ssize_t)(e->n ? e->n : 8));
    if (!r) return NULL;
    PyObject *body = PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2 ? PyTuple_GET_ITEM(r, 0) : NULL;
    if (!body || (body != Py_None && !PyBytes_Check(body))) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "decompress() returned something else than (bytes | None, finding)");
        return NULL;
    }
    Py_INCREF(body);
    Py_DECREF(r);
    return body;
}

/* One gRPC message: MessageRecord -> CallAnalysis.feed; its content is the schema-less reading of
 * the message (inflated first when compressed), or null when it does not inflate. */
static int message_item(Decoder *d, int compressed, size_t n, const uint8_t *body, size_t blen, int inflated,
                        int64_t i, double t, Buf *b) {
    b->n = 0;
    CK(PUTS(b, "{\"frame\": "));
    CK(put_i64(b, i + 1));
    CK(PUTS(b, ", \"time\": "));
    CK(put_double(b, t));
    CK(compressed ? PUTS(b, ", \"compressed\": true, \"size\": ") : PUTS(b, ", \"compressed\": false, \"size\": "));
    CK(put_u64(b, n));
    CK(PUTS(b, ", \"uncompressed_size\": "));
    CK(inflated ? put_u64(b, blen) : PUTS(b, "null"));
    CK(PUTS(b, ", \"type\": null, \"message\": "));
    CK(inflated ? pb_message(&d->pb, body, blen, b) : PUTS(b, "null"));
    return PUTS(b, "}");
}

static int on_message(Decoder *d, Flow *f, int32_t fid, int side, uint32_t sid, Stream *s, int compressed,
                      const uint8_t *m, size_t n, int64_t i, double t) {
    if (s->json) BAILOUT; /* the Python side shows JSON bodies as text */
    int err = OK;
    PyObject *inflated = NULL;
    const uint8_t *body = m;
    size_t blen = n;
    if (compressed) {
        inflated = inflate(s, side, m, n);
        if (!inflated) return FAIL;
        if (inflated != Py_None) {
            body = (const uint8_t *)PyBytes_AS_STRING(inflated);
            blen = (size_t)PyBytes_GET_SIZE(inflated);
        }
    }
    int have = !inflated || inflated != Py_None;
    int r;
    if (d->emit)
        r = message_item(d, compressed, n, body, blen, have, i, t, &d->scratch);
    else /* the check run: only whether the message decodes */
        r = have ? pb_message(&d->pb, body, blen, NULL) : OK;
    Py_XDECREF(inflated);
    CK(r);
    Call *c = call_get(d, f, fid, sid, i, t, &err);
    if (!c) return err;
    return kept_add(&c->kept[side], d->emit ? &d->scratch : NULL, have ? blen : n, i + 1);
}

/* decoder._data + messages.Deframer.feed */
static int on_data(Decoder *d, Flow *f, int32_t fid, int side, uint32_t sid, int end_stream, const uint8_t *p,
                   size_t n, int64_t i, double t) {
    int err = OK;
    Stream *s = stream_get(f, sid, &err);
    if (!s) return err;
    if (end_stream && side == 1) { /* the analysis sees the DATA frame before its messages */
        void **v = map_get(&f->calls, sid);
        if (v) ((Call *)*v)->server_done = 1;
    }
    if (n) {
        if (s->grpc < 0) BAILOUT; /* no content-type: the Python side guesses from the bytes */
        if (s->grpc == 1) {
            Buf *q = &s->deframe[side];
            CK(put(q, p, n));
            size_t pos = 0;
            while (q->n - pos >= 5) {
                const uint8_t *h = (const uint8_t *)q->p + pos;
                uint64_t length = ((uint64_t)h[1] << 24) | ((uint64_t)h[2] << 16) | ((uint64_t)h[3] << 8) | h[4];
                if (h[0] > 1) BAILOUT; /* gRPC-Web trailers or a bad flag */
                if (length > G.max_message) BAILOUT;
                if (q->n - pos - 5 < length) break;
                CK(on_message(d, f, fid, side, sid, s, h[0], h + 5, (size_t)length, i, t));
                pos += 5 + (size_t)length;
            }
            memmove(q->p, q->p + pos, q->n - pos);
            q->n -= pos;
        }
    }
    if (end_stream) stream_end(f, s, sid, side);
    return OK;
}

/* The RST_STREAM branch of CallAnalysis._frame (_reset). */
static int on_rst(Flow *f, int side, uint32_t sid, uint32_t code, double t) {
    stream_drop(f, sid);
    void **v = map_get(&f->calls, sid);
    if (!v) return OK;
    Call *c = *v;
    if (c->has_end) {
        if (side == 1) c->server_done = 1;
        return OK;
    }
    c->end = t;
    c->has_end = 1;
    c->ended_by = "rst_stream";
    c->has_rst = 1;
    c->rst_error = code;
    if (c->has_timeout && deadline_elapsed(c->end - c->start, c->timeout)) {
        c->has_status = 1;
        c->status = 4; /* DEADLINE_EXCEEDED */
        c->status_from = "inferred";
    }
    if (side == 0 && !c->server_done) { /* the server's frames sent before it read the reset may follow */
        c->awaiting = 1;
        c->await_mark = f->last_client_stream;
        c->aw_prev = f->aw_tail;
        if (f->aw_tail) f->aw_tail->aw_next = c; else f->aw_head = c;
        f->aw_tail = c;
        f->nawaiting++;
    } else {
        c->server_done = 1;
    }
    settle(f, c);
    return OK;
}

/* CallAnalysis._server_frame: a server frame on `sid` (`ends`: it ends the server's side of it)
 * while calls of the flow wait after a client's reset. The waiting calls are in the order of their
 * marks, so those a later stream releases are the first ones. */
static void server_frame(Flow *f, uint32_t sid, int ends) {
    if (ends) {
        void **v = map_get(&f->calls, sid);
        Call *c = v ? *v : NULL;
        if (c && c->awaiting) {
            await_unlink(f, c);
            settle(f, c);
        }
    }
    if (sid & 1)
        while (f->aw_head && sid > f->aw_head->await_mark) {
            Call *c = f->aw_head;
            await_unlink(f, c);
            settle(f, c);
        }
}

/* Only the flow's open calls: at most MAX_OPEN_CALLS. */
static void on_goaway(Flow *f, uint32_t last, double t) {
    for (Call *c = f->open_head, *next; c; c = next) {
        next = c->open_next;
        if (!c->has_end && c->sid > last) {
            c->end = t;
            c->has_end = 1;
            c->ended_by = "goaway";
            settle(f, c);
        }
    }
}

static uint32_t be32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }

/* Decoder._frame for one complete frame at p[0 .. 9 + length). */
static int on_frame(Decoder *d, Flow *f, int32_t fid, int side, const uint8_t *p, size_t flen, int64_t i, double t) {
    unsigned type = p[3], flags = p[4];
    uint32_t sid = be32(p + 5) & 0x7fffffff;
    size_t start = 9, end = 9 + flen;
    /* CallAnalysis.feed before _frame (HEADERS here have their whole block: CONTINUATION bails) */
    if (side == 1 && f->nawaiting)
        server_frame(f, sid, type == 3 || ((flags & 0x01) && (type == 0 || (type == 1 && (flags & 0x04)))));
    if (side == 0 && type <= 1 && (sid & 1) && sid > f->last_client_stream) f->last_client_stream = sid;
    switch (type) {
        case 0: /* DATA */
        case 1: { /* HEADERS */
            size_t pad = 0;
            if (flags & 0x08) {
                if (start >= end) BAILOUT;
                pad = p[start++];
            }
            if (type == 1 && (flags & 0x20)) start += 5;
            if (start + pad > end || sid == 0) BAILOUT;
            int end_stream = flags & 0x01;
            if (type == 0) return on_data(d, f, fid, side, sid, end_stream, p + start, end - pad - start, i, t);
            if (!(flags & 0x04)) BAILOUT; /* CONTINUATION follows */
            return on_headers(d, f, fid, side, sid, end_stream, p + start, end - pad - start, i, t);
        }
        case 3: /* RST_STREAM */
            if (flen != 4 || sid == 0) BAILOUT;
            return on_rst(f, side, sid, be32(p + 9), t);
        case 7: /* GOAWAY */
            if (flen < 8 || sid != 0) BAILOUT;
            /* sides.py: before the client's preface, a GOAWAY from the server's side naming an even
             * stream would make the Python decoder take that side for the client. */
            if (side == 1 && !f->dir[0].started && be32(p + 9) && !(be32(p + 9) & 1)) BAILOUT;
            on_goaway(f, be32(p + 9), t);
            return OK;
        case 5: /* PUSH_PROMISE */
        case 9: /* CONTINUATION */
            BAILOUT;
        default: /* PRIORITY, SETTINGS, PING, WINDOW_UPDATE, extensions: nothing a call shows */
            return OK;
    }
}

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* One TCP segment's payload, in order, for one direction of a flow. */
static int feed_direction(Decoder *d, Flow *f, int32_t fid, int side, const uint8_t *data, size_t n, int64_t i,
                          double t) {
    Direction *dr = &f->dir[side];
    const uint8_t *p = data;
    size_t len = n, pos = 0;
    if (dr->pending.n) {
        CK(put(&dr->pending, data, n));
        p = (const uint8_t *)dr->pending.p;
        len = dr->pending.n;
    }
    if (!dr->started) {
        /* The plan checked that the client starts with the preface and the server with a frame. */
        if (side == 0 && len < 24) {
            if (memcmp(p, PREFACE, len) != 0) BAILOUT;
            goto keep; /* the decoder waits for the whole preface */
        }
        if (side == 0) {
            if (memcmp(p, PREFACE, 24) != 0) BAILOUT;
            pos = 24;
        }
        dr->started = 1;
    }
    while (len - pos >= 9) {
        size_t flen = ((size_t)p[pos] << 16) | ((size_t)p[pos + 1] << 8) | p[pos + 2];
        if (flen > G.max_frame) BAILOUT;
        if (len - pos - 9 < flen) break;
        CK(on_frame(d, f, fid, side, p + pos, flen, i, t));
        pos += 9 + flen;
    }
keep:
    if (dr->pending.n) {
        memmove(dr->pending.p, dr->pending.p + pos, len - pos);
        dr->pending.n = len - pos;
    } else if (pos < len) {
        CK(put(&dr->pending, p + pos, len - pos));
    }
    return OK;
}

/* ---- rows ---------------------------------------------------------------------------------- */

static int put_or_null(Buf *b, const Buf *x, const char *empty) {
    if (x->n) return put(b, x->p, x->n);
    return put(b, empty, strlen(empty));
}

static int put_name_or_null(Buf *b, const char *name) {
    if (!name) return PUTS(b, "null");
    CK(PUTS(b, "\""));
    CK(put(b, name, strlen(name)));
    return PUTS(b, "\"");
}

/* One finding of a row, as json.dumps writes an AnalysisFinding. */
static int put_finding(Buf *b, int64_t frame, const char *code, const char *message) {
    CK(PUTS(b, "{\"frame\": "));
    CK(put_i64(b, frame));
    CK(PUTS(b, ", \"severity\": \"warn\", \"code\": "));
    CK(put_jstr(b, code, strlen(code)));
    CK(PUTS(b, ", \"message\": "));
    CK(put_jstr(b, message, strlen(message)));
    return PUTS(b, "}");
}

/* calls._findings: the limits the row hit, in the same words. */
static int put_findings(Buf *b, const Call *c) {
    char text[512];
    int n = 0;
    for (int side = 0; side < 2; side++) {
        const Kept *k = &c->kept[side];
        if (!k->omitted) continue;
        snprintf(text, sizeof text,
                 "%lld of %lld %s left out: kept the first %llu and the last %llu, %llu bytes of each at most "
                 "(MESSAGES_KEPT_FIRST, MESSAGES_KEPT_LAST, MESSAGE_BYTES_KEPT)",
                 (long long)k->omitted, (long long)k->total, side ? "responses" : "requests",
                 (unsigned long long)G.messages_first, (unsigned long long)G.messages_last,
                 (unsigned long long)G.message_bytes);
        if (n++) CK(PUTS(b, ", "));
        CK(put_finding(b, k->omitted_frame, "grpc.messages_limit", text));
    }
    if (c->given_up) {
        snprintf(text, sizeof text,
                 "more than %llu calls open on this connection (MAX_OPEN_CALLS): this one, the oldest, was given up "
                 "and written as it stood",
                 (unsigned long long)G.max_open_calls);
        if (n++) CK(PUTS(b, ", "));
        CK(put_finding(b, c->given_up, "grpc.calls_limit", text));
    }
    return OK;
}

/* CallAnalysis._rows for one call, as json.dumps(row, ensure_ascii=False). */
static int render_row(Decoder *d, Buf *b, const Call *c) {
    b->n = 0;
    CK(PUTS(b, "{\"flow\": "));
    CK(put_i64(b, c->flow));
    CK(PUTS(b, ", \"client\": "));
    Py_ssize_t clen;
    const char *client = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(d->clients, c->flow), &clen);
    if (!client) return FAIL;
    CK(put(b, client, (size_t)clen));
    CK(PUTS(b, ", \"stream_id\": "));
    CK(put_u64(b, c->sid));
    CK(PUTS(b, ", \"path\": "));
    if (c->has_path)
        CK(put_jstr(b, c->path.p ? c->path.p : "", c->path.n));
    else
        CK(PUTS(b, "null"));
    CK(PUTS(b, ", \"path_from\": "));
    CK(put_name_or_null(b, c->has_path ? "header" : NULL));
    /* (path or "").lstrip("/").rpartition("/") */
    const char *path = c->has_path && c->path.p ? c->path.p : "";
    size_t plen = c->has_path ? c->path.n : 0, a = 0;
    while (a < plen && path[a] == '/') a++;
    size_t slash = plen;
    for (size_t k = plen; k-- > a;)
        if (path[k] == '/') {
            slash = k;
            break;
        }
    size_t svc_from = a, svc_len = slash == plen ? 0 : slash - a;
    size_t meth_from = slash == plen ? a : slash + 1, meth_len = plen - meth_from;
    CK(PUTS(b, ", \"service\": "));
    if (svc_len)
        CK(put_jstr(b, path + svc_from, svc_len));
    else
        CK(PUTS(b, "null"));
    CK(PUTS(b, ", \"method\": "));
    if (meth_len)
        CK(put_jstr(b, path + meth_from, meth_len));
    else
        CK(PUTS(b, "null"));
    static const char *KINDS[2][2] = {{"unary", "server_streaming"}, {"client_streaming", "bidi"}};
    CK(PUTS(b, ", \"kind\": \""));
    const char *kind = KINDS[c->kept[0].total > 1][c->kept[1].total > 1];
    CK(put(b, kind, strlen(kind)));
    CK(PUTS(b, "\", \"kind_from\": \"observed\", \"status\": "));
    if (c->has_status) {
        CK(put_i64(b, c->status));
        CK(PUTS(b, ", \"status_name\": "));
        if (c->status >= 0 && c->status <= 16) {
            CK(put_jstr(b, STATUS_NAMES[c->status], strlen(STATUS_NAMES[c->status])));
        } else {
            CK(PUTS(b, "\"CODE_"));
            CK(put_i64(b, c->status));
            CK(PUTS(b, "\""));
        }
    } else {
        CK(PUTS(b, "null, \"status_name\": null"));
    }
    CK(PUTS(b, ", \"status_from\": "));
    CK(put_name_or_null(b, c->status_from));
    CK(PUTS(b, ", \"grpc_message\": "));
    CK(put_or_null(b, &c->message, "null"));
    CK(PUTS(b, ", \"status_details\": "));
    CK(put_or_null(b, &c->details, "null"));
    CK(PUTS(b, ", \"ended_by\": "));
    CK(put_name_or_null(b, c->ended_by));
    CK(PUTS(b, ", \"rst_stream_error\": "));
    if (!c->has_rst) {
        CK(PUTS(b, "null"));
    } else if (c->rst_error < sizeof ERROR_CODES / sizeof *ERROR_CODES) {
        CK(put_name_or_null(b, ERROR_CODES[c->rst_error]));
    } else { /* fr.ERROR_CODES.get(code, str(code)) */
        CK(PUTS(b, "\""));
        CK(put_u64(b, c->rst_error));
        CK(PUTS(b, "\""));
    }
    CK(PUTS(b, ", \"timeout\": "));
    if (c->has_timeout)
        CK(put_double(b, c->timeout));
    else
        CK(PUTS(b, "null"));
    CK(PUTS(b, ", \"unknown_headers\": 0, \"request_metadata\": "));
    CK(put_or_null(b, &c->req_md, "{}"));
    CK(PUTS(b, ", \"response_metadata\": "));
    CK(put_or_null(b, &c->resp_md, "{}"));
    CK(PUTS(b, ", \"trailers\": "));
    CK(put_or_null(b, &c->trl_md, "{}"));
    CK(PUTS(b, ", \"requests\": ["));
    CK(put_kept(b, &c->kept[0]));
    CK(PUTS(b, "], \"responses\": ["));
    CK(put_kept(b, &c->kept[1]));
    CK(PUTS(b, "], \"requests_omitted\": "));
    CK(put_i64(b, c->kept[0].omitted));
    CK(PUTS(b, ", \"responses_omitted\": "));
    CK(put_i64(b, c->kept[1].omitted));
    CK(PUTS(b, ", \"start\": "));
    CK(put_double(b, c->start));
    if (c->has_end) {
        CK(PUTS(b, ", \"end\": "));
        CK(put_double(b, c->end));
        CK(PUTS(b, ", \"duration\": "));
        CK(put_double(b, c->end - c->start));
    } else {
        CK(PUTS(b, ", \"end\": null, \"duration\": null"));
    }
    CK(PUTS(b, ", \"findings\": ["));
    CK(put_findings(b, c));
    return PUTS(b, "]}");
}

static int emit(Decoder *d, const Call *c, int64_t bucket) {
    CK(render_row(d, &d->row, c));
    PyObject *row = Py_BuildValue("(LLs#)", (long long)bucket, (long long)c->created, d->row.p, (Py_ssize_t)d->row.n);
    if (!row) return FAIL;
    int r = PyList_Append(d->out, row);
    Py_DECREF(row);
    return r ? FAIL : OK;
}

/* CallAnalysis.drain at a drain point: rows of the calls that ended, in the order they began.
 * `all` also takes the calls still open (CallAnalysis.rows at the end). */
static int drain(Decoder *d, int64_t bucket, int all) {
    size_t k = 0;
    int r = OK;
    for (size_t j = 0; j < d->norder; j++) {
        Call *c = d->order[j];
        Flow *f = &d->flows[c->flow];
        if (!f->bailed && !call_done(c) && !all) {
            d->order[k++] = c;
            continue;
        }
        if (!f->bailed && d->emit && r == OK) r = emit(d, c, bucket);
        if (r == FAIL) {
            d->order[k++] = c;
            continue;
        }
        if (!f->bailed) { /* a given-up call left the map then (its stream may be another call's) */
            if (!c->given_up) map_del(&f->calls, c->sid);
            await_unlink(f, c);
            open_unlink(f, c);
        }
        call_free(c);
    }
    d->norder = k;
    return r;
}

/* ---- the Python type ----------------------------------------------------------------------- */

static int64_t next_point(const Decoder *d) {
    return d->last < 0 ? 0 : (d->last / d->drain_every + 1) * d->drain_every;
}

typedef struct {
    Py_buffer view;
    int held;
} Arr;

static int arr_get(PyObject *o, Arr *a, Py_ssize_t itemsize, Py_ssize_t n, const char *what) {
    if (PyObject_GetBuffer(o, &a->view, PyBUF_C_CONTIGUOUS) < 0) return FAIL;
    a->held = 1;
    if (n >= 0 && a->view.len != itemsize * n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of %zd bytes", what, n, itemsize);
        return FAIL;
    }
    return OK;
}

static void arr_release(Arr *a) {
    if (a->held) PyBuffer_Release(&a->view);
    a->held = 0;
}

static PyObject *Decoder_feed(Decoder *d, PyObject *args) {
    PyObject *ob[7];
    if (!PyArg_ParseTuple(args, "OOOOOOO:feed", &ob[0], &ob[1], &ob[2], &ob[3], &ob[4], &ob[5], &ob[6])) return NULL;
    Arr a[7];
    memset(a, 0, sizeof a);
    PyObject *result = NULL;
    if (arr_get(ob[0], &a[0], 1, -1, "buffer") || arr_get(ob[3], &a[3], 8, -1, "packets")) goto done;
    Py_ssize_t n = a[3].view.len / 8;
    if (arr_get(ob[1], &a[1], 8, n, "starts") || arr_get(ob[2], &a[2], 4, n, "lengths") ||
        arr_get(ob[4], &a[4], 4, n, "flows") || arr_get(ob[5], &a[5], 1, n, "directions") ||
        arr_get(ob[6], &a[6], 8, n, "ts_ns"))
        goto done;
    const uint8_t *buf = a[0].view.buf;
    const int64_t *starts = a[1].view.buf, *packets = a[3].view.buf, *ts = a[6].view.buf;
    const uint32_t *lengths = a[2].view.buf;
    const int32_t *flows = a[4].view.buf;
    const uint8_t *dirs = a[5].view.buf;
    d->out = PyList_New(0);
    if (!d->out) goto done;
    for (Py_ssize_t k = 0; k < n; k++) {
        int64_t i = packets[k];
        int32_t fid = flows[k];
        if (fid < 0 || fid >= d->nflows || i <= d->last || starts[k] < 0 ||
            (uint64_t)starts[k] + lengths[k] > (uint64_t)a[0].view.len || dirs[k] > 1) {
            PyErr_SetString(PyExc_ValueError, "feed: packets out of order or outside the buffer");
            goto done;
        }
        int64_t p = next_point(d);
        if (p < i && drain(d, p, 0)) goto done;
        Flow *f = &d->flows[fid];
        if (!f->bailed) {
            if (!f->seen) { /* a size update may set max_size to 0 later: initialise once */
                f->seen = 1;
                f->dir[0].table.max_size = f->dir[1].table.max_size = G.default_table;
            }
            double t = (double)ts[k] / 1e9;
            int r = feed_direction(d, f, fid, dirs[k], buf + starts[k], lengths[k], i, t);
            if (r == FAIL) goto done;
            if (r == BAIL) {
                f->why = bail_why;
                f->bailed = 1;
                flow_free(f); /* its calls stay in `order` until the next drain frees them unseen */
            }
        }
        d->last = i;
        if (i % d->drain_every == 0 && drain(d, i, 0)) goto done;
    }
    result = d->out;
    d->out = NULL;
done:
    Py_CLEAR(d->out);
    for (int k = 0; k < 7; k++) arr_release(&a[k]);
    return result;
}

static PyObject *Decoder_finish(Decoder *d, PyObject *args) {
    long long n;
    if (!PyArg_ParseTuple(args, "L:finish", &n)) return NULL;
    d->out = PyList_New(0);
    if (!d->out) return NULL;
    int64_t p = next_point(d);
    if ((p < n && drain(d, p, 0)) || drain(d, n, 0) || drain(d, n + 1, 1)) {
        Py_CLEAR(d->out);
        return NULL;
    }
    PyObject *out = d->out;
    d->out = NULL;
    return out;
}

static PyObject *Decoder_bailed(Decoder *d, PyObject *noargs) {
    (void)noargs;
    PyObject *out = PyDict_New();
    if (!out) return NULL;
    for (Py_ssize_t k = 0; k < d->nflows; k++) {
        if (!d->flows[k].bailed) continue;
        PyObject *key = PyLong_FromSsize_t(k), *why = PyUnicode_FromString(d->flows[k].why);
        if (!key || !why || PyDict_SetItem(out, key, why)) {
            Py_XDECREF(key);
            Py_XDECREF(why);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(why);
    }
    return out;
}

static int Decoder_init(Decoder *d, PyObject *args, PyObject *kw) {
    static char *names[] = {"flows", "emit", "drain_every", "clients", NULL};
    Py_ssize_t nflows;
    int emit_rows;
    long every;
    PyObject *clients;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "nplO!", names, &nflows, &emit_rows, &every, &PyList_Type, &clients))
        return -1;
    if (!G.ready) {
        PyErr_SetString(PyExc_RuntimeError, "init() the module first");
        return -1;
    }
    if (nflows < 0 || every < 1 || d->flows || PyList_GET_SIZE(clients) != nflows) {
        PyErr_SetString(PyExc_ValueError, "bad arguments");
        return -1;
    }
    for (Py_ssize_t k = 0; k < nflows; k++)
        if (!PyUnicode_Check(PyList_GET_ITEM(clients, k))) {
            PyErr_SetString(PyExc_TypeError, "clients: a str (JSON text) per flow");
            return -1;
        }
    Py_INCREF(clients);
    d->clients = clients;
    d->flows = calloc((size_t)nflows + 1, sizeof(Flow));
    if (!d->flows) {
        PyErr_NoMemory();
        return -1;
    }
    d->nflows = nflows;
    d->emit = emit_rows;
    d->drain_every = every;
    d->last = -1;
    return 0;
}

static void Decoder_dealloc(Decoder *d) {
    for (size_t j = 0; j < d->norder; j++) call_free(d->order[j]);
    free(d->order);
    for (Py_ssize_t k = 0; k < d->nflows; k++)
        if (!d->flows[k].bailed) flow_free(&d->flows[k]);
    free(d->flows);
    free(d->block.h);
    buf_free(&d->block.arena);
    buf_free(&d->scratch);
    buf_free(&d->row);
    free(d->pb.f);
    Py_XDECREF(d->clients);
    Py_XDECREF(d->out);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

static PyMethodDef Decoder_methods[] = {
    {"feed", (PyCFunction)Decoder_feed, METH_VARARGS,
     "feed(buffer, starts, lengths, packets, flows, directions, ts_ns) -> [(bucket, created, row)]\n"
     "TCP payloads in frame order (int64, int64, uint32, int32, uint8, int64 arrays)."},
    {"finish", (PyCFunction)Decoder_finish, METH_VARARGS, "finish(packets) -> the remaining rows"},
    {"bailed", (PyCFunction)Decoder_bailed, METH_NOARGS, "{flow: why} of connections left to Python"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "protoscope.decoders.grpc._bulk.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Decoder(flows, emit, drain_every, clients): the calls of whole h2c connections",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decoder_init,
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_methods = Decoder_methods,
};

/* init(static_table, huffman_table, limits, decompress): hpack's tables, the Python modules'
 * limits and messages.decompress. */
static PyObject *mod_init(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *stat, *huff, *lim, *decompress;
    if (!PyArg_ParseTuple(args, "O!O!O!O:init", &PyList_Type, &stat, &PyList_Type, &huff, &PyDict_Type, &lim,
                          &decompress))
        return NULL;
    struct {
        const char *key;
        long long *out;
    } keys[] = {{"max_depth", NULL},      {"max_fields", NULL},     {"max_field_number", NULL},
                {"max_header_list", NULL}, {"max_table", NULL},      {"default_table", NULL},
                {"max_message", NULL},    {"max_frame", NULL},      {"max_headers", NULL},
                {"max_streams", NULL},    {"max_open_calls", NULL}, {"messages_first", NULL},
                {"messages_last", NULL},  {"message_bytes", NULL},  {"max_work", NULL}};
    enum { NKEYS = sizeof keys / sizeof *keys };
    long long vals[NKEYS];
    for (int k = 0; k < NKEYS; k++) {
        PyObject *v = PyDict_GetItemString(lim, keys[k].key);
        if (!v) return PyErr_Format(PyExc_KeyError, "limit %s missing", keys[k].key);
        vals[k] = PyLong_AsLongLong(v);
        if (vals[k] == -1 && PyErr_Occurred()) return NULL;
        if (vals[k] < 0) return PyErr_Format(PyExc_ValueError, "limit %s is negative", keys[k].key);
    }
    G.max_depth = (long)vals[0];
    G.max_fields = (long)vals[1];
    G.max_field_number = (long)vals[2];
    G.max_header_list = (uint64_t)vals[3];
    G.max_table = (uint64_t)vals[4];
    G.default_table = (uint64_t)vals[5];
    G.max_message = (uint64_t)vals[6];
    G.max_frame = (uint64_t)vals[7];
    G.max_headers = (uint64_t)vals[8];
    G.max_streams = (uint64_t)vals[9];
    G.max_open_calls = (uint64_t)vals[10];
    G.messages_first = (uint64_t)vals[11];
    G.messages_last = (uint64_t)vals[12];
    G.message_bytes = (uint64_t)vals[13];
    G.max_work = (long)vals[14];
    const char *fkeys[] = {"timeout_rounding", "timeout_granularity"};
    double *fouts[] = {&G.timeout_rounding, &G.timeout_granularity};
    for (int k = 0; k < 2; k++) {
        PyObject *v = PyDict_GetItemString(lim, fkeys[k]);
        if (!v) return PyErr_Format(PyExc_KeyError, "limit %s missing", fkeys[k]);
        *fouts[k] = PyFloat_AsDouble(v);
        if (*fouts[k] == -1.0 && PyErr_Occurred()) return NULL;
    }
    /* The limits are read at every init (tests make them small), the tables only at the first. */
    if (G.ready) Py_RETURN_NONE;
    if (PyList_GET_SIZE(huff) != 256 * 16 || PyList_GET_SIZE(stat) > 128) {
        PyErr_SetString(PyExc_ValueError, "unexpected hpack tables");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < 256 * 16; k++) {
        int st, fl, by;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(huff, k), "iii", &st, &fl, &by)) return NULL;
        if (st < 0 || st > 255 || fl < 0 || fl > 255 || by < 0 || by > 255) {
            PyErr_SetString(PyExc_ValueError, "unexpected Huffman table entry");
            return NULL;
        }
        G.huff_state[k] = (uint16_t)st;
        G.huff_flags[k] = (uint8_t)fl;
        G.huff_byte[k] = (uint8_t)by;
    }
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(stat); k++) {
        const char *n, *v;
        Py_ssize_t nl, vl;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(stat, k), "y#y#", &n, &nl, &v, &vl)) return NULL;
        G.static_name[k] = malloc((size_t)nl + 1);
        G.static_value[k] = malloc((size_t)vl + 1);
        if (!G.static_name[k] || !G.static_value[k]) return PyErr_NoMemory();
        memcpy(G.static_name[k], n, (size_t)nl);
        memcpy(G.static_value[k], v, (size_t)vl);
        G.static_nlen[k] = (size_t)nl;
        G.static_vlen[k] = (size_t)vl;
    }
    G.nstatic = (int)PyList_GET_SIZE(stat);
    Py_INCREF(decompress);
    G.decompress = decompress;
    G.ready = 1;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"init", mod_init, METH_VARARGS, "init(static_table, huffman_table, limits, decompress)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_bulk",
                                    "The calls of whole h2c connections, decoded in C (see _bulk.c)", -1,
                                    module_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__bulk(void) {
    if (PyType_Ready(&DecoderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&DecoderType);
    if (PyModule_AddObject(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(&DecoderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
