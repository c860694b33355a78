/* JSON documents made Egress's JSONL text in C (sinks/json_native.py; the rules are
   render.json_document's): the document checked against JSON's grammar, its whitespace
   dropped, every other byte kept. That is exactly Python's compact re-encoding, numbers as
   the source wrote them, wherever the document's strings are escaped as Python escapes them
   (PostgreSQL's jsonb and MySQL's JSON text are) and no object repeats a key. Anything
   else -- another escape, a repeated key, "-0", NaN, text that is not JSON, nesting past
   MAX_DEPTH, an object of more than MAX_KEYS keys -- is left to Python, value by value:
   the document is marked, not written. */

#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 200
#define MAX_KEYS 64

typedef struct {
    const char *p, *end;
    char *o;
    int depth;
} Doc;

static int value(Doc *d);

static void blanks(Doc *d) {
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
        d->p++;
}

static int hex_digit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static int hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

/* A string whose escapes Python writes back the same: the short ones, and \u00XX (lowercase)
   for a control character without a short one. *plain: no escape at all. */
static int string(Doc *d, int *plain) {
    *plain = 1;
    *d->o++ = *d->p++; /* the opening quote */
    while (d->p < d->end) {
        unsigned char c = (unsigned char)*d->p;
        if (c == '"') {
            *d->o++ = *d->p++;
            return 1;
        }
        if (c < 0x20)
            return 0; /* not JSON (Python's strict reader refuses it too) */
        if (c != '\\') {
            *d->o++ = *d->p++;
            continue;
        }
        *plain = 0;
        if (d->end - d->p < 2)
            return 0;
        char e = d->p[1];
        if (e == '"' || e == '\\' || e == 'n' || e == 'r' || e == 't' || e == 'b' || e == 'f') {
            memcpy(d->o, d->p, 2);
            d->o += 2;
            d->p += 2;
            continue;
        }
        if (e != 'u' || d->end - d->p < 6 || d->p[2] != '0' || d->p[3] != '0' ||
            !hex_digit(d->p[4]) || !hex_digit(d->p[5]))
            return 0; /* \/, \uXXXX of a printable character or in capitals: Python's way */
        int code = hex_value(d->p[4]) * 16 + hex_value(d->p[5]);
        if (code >= 0x20 || code == 8 || code == 9 || code == 10 || code == 12 || code == 13)
            return 0; /* Python writes these as \b \t \n \f \r, or the character itself */
        memcpy(d->o, d->p, 6);
        d->o += 6;
        d->p += 6;
    }
    return 0; /* unterminated */
}

static int digits(Doc *d, const char **q) {
    const char *start = *q;
    while (*q < d->end && **q >= '0' && **q <= '9')
        (*q)++;
    return *q > start;
}

/* JSON's number, as Python's reader takes it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int number(Doc *d) {
    const char *q = d->p;
    int whole = 1;
    if (q < d->end && *q == '-')
        q++;
    if (q < d->end && *q == '0')
        q++;
    else if (q < d->end && *q >= '1' && *q <= '9')
        digits(d, &q);
    else
        return 0;
    if (q < d->end && *q == '.') {
        q++;
        if (!digits(d, &q))
            return 0;
        whole = 0;
    }
    if (q < d->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < d->end && (*q == '+' || *q == '-'))
            q++;
        if (!digits(d, &q))
            return 0;
        whole = 0;
    }
    if (whole && q - d->p == 2 && d->p[0] == '-')
        return 0; /* -0: Python's int writes 0 */
    memcpy(d->o, d->p, (size_t)(q - d->p));
    d->o += q - d->p;
    d->p = q;
    return 1;
}

static int word(Doc *d, const char *w, long n) {
    if (d->end - d->p < n || memcmp(d->p, w, (size_t)n) != 0)
        return 0;
    memcpy(d->o, d->p, (size_t)n);
    d->o += n;
    d->p += n;
    return 1;
}

/* The bracket opening an array or object, copied; 1 if ``close`` follows (empty), copied. */
static int opened_empty(Doc *d, char close) {
    *d->o++ = *d->p++;
    blanks(d);
    if (d->p < d->end && *d->p == close) {
        *d->o++ = *d->p++;
        return 1;
    }
    return 0;
}

/* After an item of an array or object: a comma (1: another item follows) or ``close`` (2: the
   end), copied; 0: neither. */
static int next_item(Doc *d, char close) {
    blanks(d);
    if (d->p >= d->end)
        return 0;
    char c = *d->p;
    *d->o++ = *d->p++;
    if (c == close)
        return 2;
    if (c != ',')
        return 0;
    blanks(d);
    return 1;
}

static int array(Doc *d) {
    if (opened_empty(d, ']'))
        return 1;
    for (;;) {
        if (!value(d))
            return 0;
        int next = next_item(d, ']');
        if (next != 1)
            return next == 2;
    }
}

static int object(Doc *d) {
    const char *keys[MAX_KEYS];
    long lengths[MAX_KEYS];
    int count = 0;
    if (opened_empty(d, '}'))
        return 1;
    for (;;) {
        int plain;
        const char *key = d->p;
        if (d->p >= d->end || *d->p != '"' || !string(d, &plain) || !plain || count == MAX_KEYS)
            return 0; /* a key with an escape: a repeat could hide behind it */
        long length = d->p - key;
        for (int i = 0; i < count; i++)
            if (lengths[i] == length && memcmp(keys[i], key, (size_t)length) == 0)
                return 0; /* a repeated key: Python keeps its last value */
        keys[count] = key;
        lengths[count++] = length;
        blanks(d);
        if (d->p >= d->end || *d->p != ':')
            return 0;
        *d->o++ = *d->p++;
        blanks(d);
        if (!value(d))
            return 0;
        int next = next_item(d, '}');
        if (next != 1)
            return next == 2;
    }
}

static int value(Doc *d) {
    if (d->p >= d->end)
        return 0;
    int plain, ok;
    switch (*d->p) {
    case '{':
    case '[':
        if (++d->depth > MAX_DEPTH)
            return 0;
        ok = *d->p == '{' ? object(d) : array(d);
        d->depth--;
        return ok;
    case '"':
        return string(d, &plain);
    case 't':
        return word(d, "true", 4);
    case 'f':
        return word(d, "false", 5);
    case 'n':
        return word(d, "null", 4);
    default:
        return number(d); /* NaN and Infinity too: not numbers here */
    }
}

/* Each of the n documents (Arrow string offsets and data; valid: its validity bits from
   bit_offset, or NULL) compacted into out, at out_offsets; left[i] = 1 where Python must
   render document i (its out is empty). A null's out is empty. out holds as many bytes as
   the documents: compacting never grows one. */
void egress_json_compact(const int32_t *offsets, const char *data, long n, const uint8_t *valid,
                         long bit_offset, char *out, int32_t *out_offsets, uint8_t *left) {
    char *o = out;
    out_offsets[0] = 0;
    for (long i = 0; i < n; i++) {
        long bit = bit_offset + i;
        left[i] = 0;
        if (valid == NULL || (valid[bit >> 3] >> (bit & 7)) & 1) {
            Doc d = {data + offsets[i], data + offsets[i + 1], o, 0};
            blanks(&d);
            int ok = value(&d);
            blanks(&d);
            if (ok && d.p == d.end)
                o = d.o;
            else
                left[i] = 1;
        }
        out_offsets[i + 1] = (int32_t)(o - out);
    }
}
