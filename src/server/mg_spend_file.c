/*
 * mg_spend_file — state_file: read at start, written by a timer of the main thread's loop and at
 * stop. A write failure is logged (once a minute at most) and retried at the next tick: the spend
 * stays in memory meanwhile.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "mg_budget.h"
#include "mg_conf_types.h"
#include "mg_log.h"
#include "mg_spend_file.h"
#include "mg_util.h"

struct mg_spend_file {
    struct mg_budget_registry *reg;
    char                      *path;
    struct event              *timer;
    int64_t                    last_error_ms;
};

static void
save(struct mg_spend_file *f)
{
    char why[512];

    if (mg_budget_save(f->reg, f->path, why, sizeof(why)) != 0 &&
        mg_now_ms() - f->last_error_ms >= 60000) {
        f->last_error_ms = mg_now_ms();
        mg_log_error("state_file: cannot write the spend: %s", why);
    }
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    save(arg);
}

int
mg_spend_file_open(struct mg_spend_file **out, struct event_base *base,
                   struct mg_budget_registry *reg, const struct mg_conf *conf)
{
    struct timeval every = {MG_SPEND_FILE_EVERY_MS / 1000, 0};
    struct mg_spend_file *f;
    char why[768];

    *out = NULL;
    if (conf->state_file == NULL || conf->shared.on) {
        return MG_OK;
    }
    if (mg_budget_load(reg, conf->state_file, why, sizeof(why)) != 0) {
        mg_log_error("%s", why);
        return MG_ERR;
    }
    f = mg_calloc(1, sizeof(*f));
    f->reg = reg;
    f->path = mg_strdup(conf->state_file);
    f->last_error_ms = -60000;
    f->timer = event_new(base, -1, EV_PERSIST, on_tick, f);
    if (f->timer == NULL || event_add(f->timer, &every) != 0) {
        mg_log_error("state_file: cannot start its timer");
        mg_spend_file_close(f);
        return MG_ERR;
    }
    *out = f;
    return MG_OK;
}

void
mg_spend_file_close(struct mg_spend_file *f)
{
    if (f == NULL) {
        return;
    }
    if (f->timer != NULL) {
        event_free(f->timer);
        save(f);
    }
    free(f->path);
    free(f);
}
