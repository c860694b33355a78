/* A COPY's rows from libpq into a block, without the GIL: see copy_native.py.

   libpq hands COPY data over one row per PQgetCopyData call; a Python loop around it cost
   about 1 us a row and held the GIL throughout (a parallel read's parts took turns). Here a
   row costs a C call and a memcpy, and waiting on the socket is a poll() in C. libpq's
   functions come as pointers from the libpq psycopg loaded: a PGconn is only good with the
   library that made it, so this file links against none. */
#include <errno.h>
#include <poll.h>
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
       the row to data; with strip_key (a leading key field of its own), the rest after it. */
    char *keys;
    long *key_ends; /* where each row's key ends in keys */
    long keys_used;
    long key_field;
    long strip_key;
};

enum { READY = 1, HELD = 2, DUE = 0, ENDED = -1, FAILED = -2, LOST = -3, NO_KEY = -4 };

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
            if (size > b->capacity - b->used - b->keys_used) {
                b->held = row;
                b->held_size = size;
                return HELD;
            }
            b->last = b->used;
            if (b->keys != NULL) {
                long start, end;
                int found = field_bounds(row, size, b->key_field, &start, &end);
                if (found < 0 || (b->strip_key && (end >= size || row[end] != ','))) {
                    b->held = row;
                    b->held_size = size;
                    return NO_KEY;
                }
                memcpy(b->keys + b->keys_used, row + start, (size_t)(end - start));
                b->keys_used += end - start;
                b->key_ends[b->ends_used] = b->keys_used;
                long from = b->strip_key ? end + 1 : 0;
                memcpy(b->data + b->used, row + from, (size_t)(size - from));
                b->used += size - from;
            } else {
                memcpy(b->data + b->used, row, (size_t)size);
                b->used += size;
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
