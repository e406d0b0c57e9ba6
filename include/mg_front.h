/*
 * mg_front — what a client may send before a request reaches the dispatcher, enforced as soon as
 * its head has arrived: header names and values, Content-Length and Transfer-Encoding, Host,
 * the request target, a declared body over max_body_size (413 at once), the whole header block
 * within header_timeout; and the listener's back-off when descriptors run out.
 *
 * libevent 2.1 has no hook for a new incoming request (evhttp_set_newreqcb came in 2.2), but its
 * own calls to evhttp_request_new() and evhttp_request_free() go through the PLT, so the
 * definitions in mg_front.c wrap libevent's for the whole process (as mg_reply does with evhttp_send_error): every request of
 * a worker gets a header callback and a header deadline.
 * A head that breaks a rule gets its answer written straight to the socket, and the connection
 * is closed after what is in flight was read for up to 1 s or 1 MiB, so the client reads it.
 */
#ifndef MG_FRONT_H
#define MG_FRONT_H

struct mg_worker;

/*
 * Puts this thread's evhttp requests under the rules of w (call on the worker's own thread,
 * before its loop runs), and the accept back-off on its listener.
 */
void mg_front_thread_start(struct mg_worker *w);

/* Forgets this thread's state (at the end of the worker thread). */
void mg_front_thread_stop(void);

/* Raises RLIMIT_NOFILE to its hard limit and logs the figure (once, at start). */
void mg_front_raise_nofile(void);

#endif
