/* A MySQL result's rows from libmysqlclient into Arrow columns, without the GIL: see
   fetch_native.py.

   The Python loop (one `fetch_row` call per row, a tuple of bytes objects, then one Arrow array
   of them all) cost ~2 us a row of 12 columns, held the GIL, and made a parallel read's
   sessions take turns. Here each value is copied once, into its column's data buffer, beside
   its offset and validity bit: Arrow's own large-binary layout, handed to Python per batch.
   libmysqlclient's functions come as pointers from the copy mysql-connector-python loaded
   (its C extension links it in): a connection is only good with the library that made it,
   so this file links against none. */
#include <string.h>

struct egress_mysql {
    char **(*fetch_row)(void *result);
    unsigned long *(*fetch_lengths)(void *result);
    unsigned int (*error_code)(void *mysql);
};

struct egress_batch {
    long width;
    long capacity;          /* rows the offsets and validity hold */
    long ready_bytes;       /* a batch whose values reach this many bytes is handed back */
    long rows;              /* rows in the batch */
    long bytes;             /* their values' bytes */
    long long **offsets;    /* per column: capacity + 1, Arrow's (0 first) */
    unsigned char **validity; /* per column: a bit a row, zeroed by the caller */
    char **data;            /* per column */
    long *data_capacity;    /* per column */
    long *nulls;            /* per column */
    char **pending;         /* a row fetched that did not fit: the next call takes it first */
    unsigned long *pending_lengths;
    long short_column;      /* FULL: a column whose data did not fit */
    long short_bytes;       /* ... and the bytes it needs for this batch's rows and the row */
};

enum { DONE = 0, BATCH = 1, FULL = 2, FAILED = -1 };

/* The first column the row's values do not fit in, or -1. */
static long short_column(const struct egress_batch *b, char **row, const unsigned long *lengths) {
    for (long i = 0; i < b->width; i++) {
        long used = (long)b->offsets[i][b->rows];
        if (row[i] != NULL && used + (long)lengths[i] > b->data_capacity[i])
            return i;
    }
    return -1;
}

static void append(struct egress_batch *b, char **row, const unsigned long *lengths) {
    long r = b->rows;
    for (long i = 0; i < b->width; i++) {
        long long used = b->offsets[i][r];
        if (row[i] == NULL) {
            b->nulls[i] += 1;
        } else {
            memcpy(b->data[i] + used, row[i], lengths[i]);
            used += (long long)lengths[i];
            b->validity[i][r >> 3] |= (unsigned char)(1u << (r & 7));
            b->bytes += (long)lengths[i];
        }
        b->offsets[i][r + 1] = used;
    }
    b->rows = r + 1;
}

/* Appends the result's rows to b until it is BATCH (capacity rows, or ready_bytes), a row does
   not fit (FULL: the row is pending; short_column/short_bytes say what to grow, or the
   caller hands back the batch so far), the rows are DONE, or libmysqlclient FAILED (its
   error on the connection). */
int egress_mysql_fetch(void *mysql, void *result, const struct egress_mysql *my,
                       struct egress_batch *b) {
    if (b->pending != NULL) {
        long i = short_column(b, b->pending, b->pending_lengths);
        if (i >= 0) {
            b->short_column = i;
            b->short_bytes = (long)b->offsets[i][b->rows] + (long)b->pending_lengths[i];
            return FULL;
        }
        append(b, b->pending, b->pending_lengths);
        b->pending = NULL;
    }
    while (b->rows < b->capacity && b->bytes < b->ready_bytes) {
        char **row = my->fetch_row(result);
        if (row == NULL)
            return my->error_code(mysql) ? FAILED : DONE;
        unsigned long *lengths = my->fetch_lengths(result);
        long i = short_column(b, row, lengths);
        if (i >= 0) {
            b->pending = row;
            b->pending_lengths = lengths;
            b->short_column = i;
            b->short_bytes = (long)b->offsets[i][b->rows] + (long)lengths[i];
            return FULL;
        }
        append(b, row, lengths);
    }
    return BATCH;
}
