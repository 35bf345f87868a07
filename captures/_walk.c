/* The record walk of a pcap file, in C (captures/pcap.py).
 *
 * Each record's header gives its length, so records can only be found one after another. The
 * Python scan guesses that a run of records shares one length and checks a whole run with numpy,
 * which is fast for media captures; where lengths vary (TCP data and ACKs, several connections
 * taking turns) it steps record by record, ~1 us each: 0.2 s of the 0.29 s index of a 200,000-packet
 * TCP capture, where `tshark -q` reads and dissects it all in 0.3 s. This loop does the same steps
 * (~2 ns a record) and nothing else; the Python scan stays as the fallback when no C compiler was
 * at hand, and tests/captures/test_walk.py checks both give the same offsets.
 *
 * pcap_offsets(buffer, pos, stop, header_len, big_endian) -> (offsets, pos)
 *   offsets: the int64 offsets (native order, as bytes) of the records whose whole header lies in
 *   the buffer, from `pos` until one starts at or past `stop`; pos: where the walk stopped.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

static PyObject *pcap_offsets(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, stop, header_len;
    int big_endian;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnp", &view, &pos, &stop, &header_len, &big_endian)) {
        return NULL;
    }
    if (header_len < 16 || pos < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "a record header has at least 16 bytes, at a position >= 0");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    const Py_ssize_t last = view.len - header_len; /* the last offset where a whole header fits */
    Py_ssize_t count = 0, capacity = 4096;
    int64_t *offsets = malloc((size_t)capacity * sizeof(int64_t));
    int failed = offsets == NULL;
    Py_BEGIN_ALLOW_THREADS
    while (!failed && pos <= last && pos < stop) {
        if (count == capacity) {
            int64_t *grown = realloc(offsets, (size_t)capacity * 2 * sizeof(int64_t));
            if (grown == NULL) {
                failed = 1;
                break;
            }
            offsets = grown;
            capacity *= 2;
        }
        offsets[count++] = (int64_t)pos;
        const unsigned char *caplen = data + pos + 8;
        uint32_t length = big_endian
                              ? ((uint32_t)caplen[0] << 24) | ((uint32_t)caplen[1] << 16) |
                                    ((uint32_t)caplen[2] << 8) | caplen[3]
                              : ((uint32_t)caplen[3] << 24) | ((uint32_t)caplen[2] << 16) |
                                    ((uint32_t)caplen[1] << 8) | caplen[0];
        pos += header_len + (Py_ssize_t)length;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (failed) {
        free(offsets);
        return PyErr_NoMemory();
    }
    PyObject *raw = PyBytes_FromStringAndSize((const char *)offsets, count * (Py_ssize_t)sizeof(int64_t));
    free(offsets);
    if (raw == NULL) {
        return NULL;
    }
    return Py_BuildValue("(Nn)", raw, pos);
}

static PyMethodDef methods[] = {
    {"pcap_offsets", pcap_offsets, METH_VARARGS, "Offsets of the pcap records from pos until stop."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
