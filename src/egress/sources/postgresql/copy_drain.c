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
    long capacity;  /* bytes at data */
    long ready;     /* a block this long or longer is handed back */
    long used;      /* bytes of whole rows at data */
    long rows;      /* rows read in all (a held row is counted by the caller) */
    long last;      /* where the last row in the block starts */
    char *held;     /* a row that did not fit: the caller writes it and frees it */
    int held_size;
    long *ends;     /* if not NULL, where each row in the block ends (a split routes by them) */
    long ends_capacity;
    long ends_used;
};

enum { READY = 1, HELD = 2, DUE = 0, ENDED = -1, FAILED = -2, LOST = -3 };

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* Appends rows to b until it is ready (READY: `ready` bytes, or `ends` full), a row does
   not fit (HELD), the server has sent nothing for a while and wait_ms have passed since the
   call (DUE), the copy ended (ENDED), its error result follows (FAILED), or the socket failed
   (LOST). */
int egress_copy_drain(void *conn, const struct egress_libpq *pq, struct egress_block *b,
                      long wait_ms) {
    long deadline = now_ms() + wait_ms;
    for (;;) {
        char *row = NULL;
        int size = pq->get_copy_data(conn, &row, 1);
        if (size > 0) {
            if (size > b->capacity - b->used) {
                b->held = row;
                b->held_size = size;
                return HELD;
            }
            memcpy(b->data + b->used, row, (size_t)size);
            pq->freemem(row);
            b->last = b->used;
            b->used += size;
            b->rows += 1;
            if (b->ends != NULL) {
                b->ends[b->ends_used++] = b->used;
                if (b->ends_used == b->ends_capacity)
                    return READY;
            }
            if (b->used >= b->ready)
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
