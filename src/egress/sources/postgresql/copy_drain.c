/* A COPY's rows from libpq into a block, without the GIL: see copy_native.py.

   libpq hands COPY data over one row per PQgetCopyData call; a Python loop around it cost
   about 1 us a row and held the GIL throughout (a parallel read's parts took turns). Here a
   row costs a C call and a memcpy, and waiting on the socket is a poll() in C. libpq's
   functions come as pointers from the libpq psycopg loaded: a PGconn is only good with the
   library that made it, so this file links against none. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct egress_libpq {
    int (*get_copy_data)(void *conn, char **buffer, int async);
    void (*freemem)(void *ptr);
    int (*consume_input)(void *conn);
    int (*socket)(const void *conn);
};

struct egress_block {
    char *data;
    long capacity;  /* bytes at data (and at keys, when keyed) */
    long ready;     /* a block this long or longer is handed back */
    long used;      /* bytes of whole rows at data */
    long rows;      /* rows read in all (a held row is counted by the caller) */
    long last;      /* where the last row in the block starts */
    char *held;     /* a row that did not fit: the caller writes it and frees it */
    int held_size;
    long *ends;     /* if not NULL, where each row in the block ends */
    long ends_capacity;
    long ends_used;
    /* Keyed (a split CSV; ends too): each row's field `key_field`, its key, goes to keys, and
       the row to data; with strip_key (a leading key field of its own), the rest after it
       (the float fields below count from there). */
    char *keys;
    long *key_ends; /* where each row's key ends in keys */
    long keys_used;
    long key_field;
    long strip_key;
    /* Fields holding PostgreSQL's text of a float (see egress_copy_floats; none: NULL),
       written as Egress's CSV or JSONL writer writes the same value (see egress_float_text). */
    const long *float_fields;
    long float_count;
};

/* Bytes a float's text may grow by when re-laid out (1e-06 -> 0.000001, 12345678901 ->
   1.2345678901e+10; Python's 1e+15 -> 1000000000000000.0). */
#define FLOAT_GROWTH 16

enum { READY = 1, HELD = 2, DUE = 0, ENDED = -1, FAILED = -2, LOST = -3, NO_KEY = -4, NO_FLOAT = -5 };

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* Where field `index` of a CSV row starts and ends as written (its quotes included): 0, or
   -1 if the row has fewer fields. A quoted field ends at its first quote that is not doubled;
   an unquoted one at the next comma, or at the row's newline. */
static int field_bounds(const char *row, long size, long index, long *start, long *end) {
    long at = 0;
    for (long field = 0;; field++) {
        long stop;
        if (at < size && row[at] == '"') {
            long from = at + 1;
            for (;;) {
                const char *quote = memchr(row + from, '"', (size_t)(size - from));
                if (quote == NULL)
                    return -1;
                stop = quote - row + 1;
                if (stop < size && row[stop] == '"') {
                    from = stop + 1;
                    continue;
                }
                break;
            }
        } else {
            const char *comma = memchr(row + at, ',', (size_t)(size - at));
            stop = comma != NULL ? comma - row : size - 1;
        }
        if (field == index) {
            *start = at;
            *end = stop;
            return 0;
        }
        if (stop >= size || row[stop] != ',')
            return -1;
        at = stop + 1;
    }
}

/* The value of 0.<digits> x 10^point as a double or, single, a float. */
static double parsed(const char *digits, long count, long point, int single) {
    char text[48];
    text[0] = '0';
    text[1] = '.';
    memcpy(text + 2, digits, (size_t)count);
    snprintf(text + 2 + count, sizeof text - 2 - (size_t)count, "e%ld", point);
    return single ? (double)strtof(text, NULL) : strtod(text, NULL);
}

/* The shortest digits of the same value: PostgreSQL's Ryu leaves out a shorter candidate that
   lies exactly on the edge of the value's rounding interval (2.2357217958216088e+16, where
   double-conversion and Python write 2.235721795821609e+16), so the digits one shorter,
   rounded down and up, are tried; a count of digits, point moved on a carry. */
static long shortest(char *digits, long count, long *point, int single) {
    while (count > 1) {
        double value = parsed(digits, count, *point, single);
        char up[32];
        long n = count - 1;
        while (n > 0 && digits[n - 1] == '0')
            n--;
        if (n > 0 && parsed(digits, n, *point, single) == value) {
            count = n;
            continue;
        }
        memcpy(up, digits, (size_t)(count - 1));
        long i = count - 2, carry = 1;
        for (; i >= 0 && carry; i--) {
            if (up[i] == '9') {
                up[i] = '0';
            } else {
                up[i] += 1;
                carry = 0;
            }
        }
        long up_point = *point;
        n = count - 1;
        if (carry) {  /* 99…9 -> 1 followed by zeros */
            up[0] = '1';
            n = 1;
            up_point += 1;
        }
        while (n > 1 && up[n - 1] == '0')
            n--;
        if (parsed(up, n, up_point, single) != value)
            break;
        memcpy(digits, up, (size_t)n);
        count = n;
        *point = up_point;
    }
    return count;
}

/* The layouts a float's text is re-laid out in (a float field's flag). */
enum { ARROW_LAYOUT = 0, PYTHON_LAYOUT = 1 };

static long exponent_text(long exponent, int two_digits, char *out) {
    long w = 0;
    out[w++] = exponent < 0 ? '-' : '+';
    long magnitude = exponent < 0 ? -exponent : exponent;
    char reversed[8];
    long k = 0;
    do {
        reversed[k++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    if (two_digits && k == 1)
        reversed[k++] = '0';
    while (k > 0)
        out[w++] = reversed[--k];
    return w;
}

/* 0.<digits> x 10^point laid out in fixed notation (Python's: `.0` after a whole number). */
static long fixed_text(const char *digits, long count, long point, int python, char *out) {
    long w = 0;
    if (point <= 0) {
        out[w++] = '0';
        out[w++] = '.';
        for (long i = 0; i < -point; i++)
            out[w++] = '0';
        memcpy(out + w, digits, (size_t)count);
        return w + count;
    }
    if (point >= count) {
        memcpy(out + w, digits, (size_t)count);
        w += count;
        for (long i = count; i < point; i++)
            out[w++] = '0';
        if (python) {
            out[w++] = '.';
            out[w++] = '0';
        }
        return w;
    }
    memcpy(out + w, digits, (size_t)point);
    w += point;
    out[w++] = '.';
    memcpy(out + w, digits + point, (size_t)(count - point));
    return w + count - point;
}

/* PostgreSQL's shortest text of a float (extra_float_digits = 1: `1e-05`, `1.5e+300`,
   `123.25`, `NaN`, `-Infinity`) laid out as
   - ARROW_LAYOUT: Arrow's float-to-string cast (double-conversion's ToShortest, flags
     EMIT_POSITIVE_EXPONENT_SIGN, fixed notation for decimal exponents -6 to 9: `0.00001`,
     `1.5e+300`, `123.25`, `nan`, `-inf`), what Egress's CSV holds;
   - PYTHON_LAYOUT: Python's repr of a double (fixed notation for decimal exponents -4 to 15,
     `.0` after a whole number, two exponent digits at least: `1e-05`, `100.0`, `1.5e+300`;
     `NaN`, `Infinity`, `-Infinity` kept for the caller to quote), what Egress's JSONL holds.
   All are the shortest digits that read back as the value; only the layout differs. Writes to
   out (at least n + FLOAT_GROWTH bytes) and returns the length; -1 if in is not such a text. */
long egress_float_text(const char *in, long n, int single, int layout, char *out) {
    long at = 0, w = 0;
    int python = layout == PYTHON_LAYOUT;
    if (n == 3 && memcmp(in, "NaN", 3) == 0) {
        memcpy(out, python ? "NaN" : "nan", 3);
        return 3;
    }
    if (at < n && in[at] == '-')
        out[w++] = in[at++];
    if (n - at == 8 && memcmp(in + at, "Infinity", 8) == 0) {
        memcpy(out + w, python ? "Infinity" : "inf", python ? 8 : 3);
        return w + (python ? 8 : 3);
    }
    char digits[32];
    long count = 0, point = 0, seen_point = 0, any = 0;
    for (; at < n && in[at] != 'e'; at++) {
        char c = in[at];
        if (c == '.') {
            if (seen_point)
                return -1;
            seen_point = 1;
            continue;
        }
        if (c < '0' || c > '9')
            return -1;
        any = 1;
        if (c == '0' && count == 0) {  /* a leading zero: after the point it moves the point */
            if (seen_point)
                point -= 1;
            continue;
        }
        if (count == (long)sizeof digits)
            return -1;
        digits[count++] = c;
        if (!seen_point)
            point += 1;
    }
    if (!any)
        return -1;
    if (at < n) {  /* e[+-]ddd */
        long sign = 1, value = 0;
        at++;
        if (at < n && (in[at] == '+' || in[at] == '-'))
            sign = in[at++] == '-' ? -1 : 1;
        if (at == n)
            return -1;
        for (; at < n; at++) {
            if (in[at] < '0' || in[at] > '9' || value > 10000)
                return -1;
            value = value * 10 + (in[at] - '0');
        }
        point += sign * value;
    }
    while (count > 0 && digits[count - 1] == '0')
        count--;
    if (count == 0) {  /* zero, its sign kept */
        out[w++] = '0';
        if (python) {
            out[w++] = '.';
            out[w++] = '0';
        }
        return w;
    }
    /* Only an integer can sit exactly on an interval's edge with fewer digits: a value of 2^53
       (2^24 for a single) or more, whose edges are whole numbers; below, an edge has more
       decimal digits than the value's shortest text. */
    if (point >= (single ? 8 : 16))
        count = shortest(digits, count, &point, single);
    long exponent = point - 1;
    if (python ? (exponent >= -4 && exponent < 16) : (exponent >= -6 && exponent < 10))
        return w + fixed_text(digits, count, point, python, out + w);
    out[w++] = digits[0];
    if (count > 1) {
        out[w++] = '.';
        memcpy(out + w, digits + 1, (size_t)(count - 1));
        w += count - 1;
    }
    out[w++] = 'e';
    return w + exponent_text(exponent, python, out + w);
}

/* Copies a row to out with its float fields re-laid out; the bytes written, or -1. fields:
   each float field's index times four, plus one for a single-precision float, plus two for
   PYTHON_LAYOUT, ascending. */
long egress_copy_floats(const char *row, long size, const long *fields, long count, char *out) {
    long at = 0, w = 0, next = 0;  /* next: the index of the field that starts at `at` */
    for (long i = 0; i < count; i++) {
        long field = fields[i] >> 2, start, end;
        if (field_bounds(row + at, size - at, field - next, &start, &end) < 0)
            return -1;
        start += at;
        end += at;
        memcpy(out + w, row + at, (size_t)(start - at));
        w += start - at;
        if (end > start) {  /* empty: NULL */
            long n = egress_float_text(row + start, end - start, (int)(fields[i] & 1),
                                       (int)(fields[i] >> 1 & 1), out + w);
            if (n < 0)
                return -1;
            w += n;
        }
        at = end;
        next = field + 1;
        if (at < size && row[at] == ',') {
            out[w++] = ',';
            at++;
        }
    }
    memcpy(out + w, row + at, (size_t)(size - at));
    return w + size - at;
}

/* Appends rows to b until it is ready (READY: `ready` bytes, or `ends` full), a row does
   not fit (HELD), the server has sent nothing for a while and wait_ms have passed since the
   call (DUE), the copy ended (ENDED), its error result follows (FAILED), the socket failed
   (LOST), or a keyed row has no key (NO_KEY: the row is held). */
int egress_copy_drain(void *conn, const struct egress_libpq *pq, struct egress_block *b,
                      long wait_ms) {
    long deadline = now_ms() + wait_ms;
    for (;;) {
        char *row = NULL;
        int size = pq->get_copy_data(conn, &row, 1);
        if (size > 0) {
            if (size + b->float_count * FLOAT_GROWTH > b->capacity - b->used - b->keys_used) {
                b->held = row;
                b->held_size = size;
                return HELD;
            }
            b->last = b->used;
            long start = 0, end = 0, from = 0;
            if (b->keys != NULL) {
                int found = field_bounds(row, size, b->key_field, &start, &end);
                if (found < 0 || (b->strip_key && (end >= size || row[end] != ','))) {
                    b->held = row;
                    b->held_size = size;
                    return NO_KEY;
                }
                from = b->strip_key ? end + 1 : 0;
            }
            /* The row (a stripped key's rest): float fields count from where it starts. */
            if (b->float_count > 0) {
                long n = egress_copy_floats(row + from, size - from, b->float_fields,
                                            b->float_count, b->data + b->used);
                if (n < 0) {
                    b->held = row;
                    b->held_size = size;
                    return NO_FLOAT;
                }
                b->used += n;
            } else {
                memcpy(b->data + b->used, row + from, (size_t)(size - from));
                b->used += size - from;
            }
            if (b->keys != NULL) {
                memcpy(b->keys + b->keys_used, row + start, (size_t)(end - start));
                b->keys_used += end - start;
                b->key_ends[b->ends_used] = b->keys_used;
            }
            pq->freemem(row);
            b->rows += 1;
            if (b->ends != NULL) {
                b->ends[b->ends_used++] = b->used;
                if (b->ends_used == b->ends_capacity)
                    return READY;
            }
            if (b->used + b->keys_used >= b->ready)
                return READY;
            continue;
        }
        if (size == -1)
            return ENDED;
        if (size < 0)
            return FAILED;
        long left = deadline - now_ms();
        if (left <= 0)
            return DUE;
        struct pollfd p = {pq->socket(conn), POLLIN, 0};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno != EINTR)
            return LOST;
        if (n > 0 && !pq->consume_input(conn))
            return LOST;
    }
}
