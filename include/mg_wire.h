/*
 * mg_wire — the bytes of an answer on the client's connection: the head written in one pass
 * (status line, headers, Date, framing, Connection) and the body framed by the gateway (chunked,
 * or as the backend's length said); mg_conn writes them.
 *
 * Each header is two memcpy calls into a per-thread stage; the head is held on the connection
 * until the first body bytes (or the end), and leaves with them in one writev straight to the
 * socket when nothing is queued, as nginx writes: no write event armed and disarmed, no extra
 * turn of the loop. Every answer, relayed or made by the gateway, is written here.
 */
#ifndef MG_WIRE_H
#define MG_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct mg_conn;
struct mg_req;

#define MG_WIRE_STAGE 2048   /* head bytes gathered before they are handed over */

/*
 * Client bytes queued before the wire says it is congested (the relay's owner then pauses the
 * upstream until they are all written). With the chunk curl holds back while paused (at most
 * its 16 KiB buffer), a client that stops reading makes the gateway keep at most about 48 KiB
 * of its answer (nginx: 32-64 KiB of buffers).
 */
#define MG_WIRE_HWM (32 * 1024)

/* How an answer is framed on the client's connection: a pure decision, tested on its own. */
struct mg_wire_frame {
    int body;        /* the status (and method) allow a body */
    int chunked;     /* the body goes as chunks */
    int keepalive;   /* the connection stays open after the answer */
    int say_close;   /* the head says "Connection: close" */
    int say_keep;    /* the head says "Connection: keep-alive" (an HTTP/1.0 client asked) */
};

/*
 * The framing of an answer: minor is the client's HTTP/1.x minor version, status the answer's,
 * head 1 for a HEAD request, content_length the body's length or -1 when it is not known
 * beforehand, conn_close / conn_keep whether the client's Connection header is "close" /
 * "keep-alive". HTTP/1.1 gets chunks when the length is unknown; HTTP/1.0 then gets the body up
 * to the close of the connection.
 */
void mg_wire_framing(struct mg_wire_frame *f, int minor, int status, int head,
                     int64_t content_length, int conn_close, int conn_keep);

/* "HTTP/1.1 200 OK\r\n" for status into buf (at least 64 bytes); its length. */
size_t mg_wire_status_line(char *buf, int minor, int status);

/* "Date: Tue, 15 Nov 1994 08:12:31 GMT\r\n" for t into buf (at least 48 bytes); its length. */
size_t mg_wire_date_line(char *buf, time_t t);

/* One answer being written; set up by mg_wire_begin(). */
struct mg_wire {
    struct mg_req       *req;
    struct mg_conn      *conn;
    struct mg_wire_frame frame;
    int                  status;
    int                  have_date;   /* the head holds the backend's Date: ours is not added */
    size_t               len;         /* bytes in the thread's stage (see mg_wire_begin) */
    int64_t              bytes;       /* body bytes handed to mg_wire_body (framing excluded) */
    int64_t              t_first;     /* when the first body bytes were (mg_now_us), 0 before */
    int64_t              length;      /* the body's declared length; -1 when not known */
};

/*
 * Starts the head of an answer to req with this status (its status line); the byte counts start
 * at 0. The head is gathered
 * in a buffer of the calling thread until mg_wire_send_head(): begin, headers and send_head must
 * run in one go, with no other answer's head begun in between (each worker runs one at a time).
 */
void mg_wire_begin(struct mg_wire *w, struct mg_req *req, int status);

/*
 * Adds one header line. Names and values must already be checked (mg_hdr, mg_head). A caller
 * that adds a Date line sets have_date, so that the head gets only one.
 */
void mg_wire_header(struct mg_wire *w, const char *name, const char *value);

/* Adds header lines already formatted ("Name: value\r\n" each). */
void mg_wire_lines(struct mg_wire *w, const char *lines, size_t len);

/*
 * Ends the head (Date unless one was added, framing, Connection); it leaves with the first body
 * bytes or at mg_wire_end(). content_length is the body's length when it is known and relayed
 * as is, else -1 (a HEAD request's answer carries the length a GET would get).
 */
void mg_wire_send_head(struct mg_wire *w, int64_t content_length);

/*
 * Body bytes, framed as the head said (nothing for a status or method without a body), with the
 * head if it has not left yet: written to the socket at once when nothing waits before them,
 * else queued behind what waits.
 */
void mg_wire_body(struct mg_wire *w, const char *data, size_t len);

/* mg_wire_body for the relay's last stage (arg: the struct mg_wire). */
void mg_wire_emit(void *arg, const char *data, size_t len);

/* 1 when the client's connection holds MG_WIRE_HWM bytes or more not yet written. */
int mg_wire_congested(const struct mg_wire *w);

/*
 * Ends the answer (the last chunk when chunked); the connection goes on to the next request or
 * closes. The request may be over and freed before this returns.
 */
void mg_wire_end(struct mg_wire *w);

#endif
