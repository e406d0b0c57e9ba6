/* Unit tests: config loading, defaults, ${VAR}, and errors with their positions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_api_types.h"
#include "mg_conf.h"
#include "mg_log.h"
#include "mg_test.h"
#include "mg_yaml.h"

static struct mg_buf errs;

static struct mg_conf *
parse(const char *text)
{
    mg_buf_deinit(&errs);
    mg_buf_init(&errs, 1 << 20);
    return mg_conf_parse("t.yaml", text, strlen(text), &errs);
}

/* Asserts that text is refused and that the errors contain want (e.g. "t.yaml:3:5: ..."). */
#define ck_refused(text, want)                                                                 \
    do {                                                                                       \
        struct mg_conf *c_ = parse(text);                                                      \
        ck_assert_msg(c_ == NULL, "config should be refused: %s", want);                      \
        ck_assert_msg(errs.data && strstr(errs.data, want), "want \"%s\" in:\n%s", want,       \
                      errs.data ? errs.data : "(none)");                                       \
    } while (0)

static const char *full =
    "listen: \"[::1]:9090\"\n"
    "workers: 3\n"
    "max_body_size: 2MiB\n"
    "shutdown_timeout: 10s\n"
    "timeouts:\n"
    "  connect: 1s\n"
    "  first_byte: 20s\n"
    "  idle: 30s\n"
    "  total: 2m\n"
    "access_log: /var/log/mg.log\n"
    "log_level: debug\n"
    "admin_listen: 127.0.0.1:9901\n"
    "backends:\n"
    "  - name: openai\n"
    "    url: https://api.openai.com/v1/\n"
    "    api_key: ${MG_TEST_KEY}\n"
    "    headers:\n"
    "      OpenAI-Organization: org-123\n"
    "    timeouts: {first_byte: 5s}\n"
    "  - name: local\n"
    "    url: http://127.0.0.1:11434/v1\n"
    "rules:\n"
    "  - models: [gpt-4o, gpt-4o-mini]\n"
    "    owned_by: openai\n"
    "    created: 2024-05-13T00:00:00Z\n"
    "    headers: {x-tenant: acme}\n"
    "    list: false\n"
    "    retries: 4\n"
    "    backends:\n"
    "      - backend: openai\n"
    "        weight: 3\n"
    "        model: gpt-4o-2024-08-06\n"
    "      - backend: local\n"
    "        priority: 1\n"
    "  - models: [\"llama-*\"]\n"
    "    created: 1700000000\n"
    "    backends:\n"
    "      - {backend: local}\n"
    "      - {backend: openai, weight: 0}\n";

START_TEST(full_config)
{
    struct mg_conf *c;

    setenv("MG_TEST_KEY", "sk-test-123", 1);
    c = parse(full);
    ck_assert_msg(c != NULL, "%s", errs.data);
    ck_assert_str_eq(c->listen_host, "::1");
    ck_assert_int_eq(c->listen_port, 9090);
    ck_assert_int_eq(c->workers, 3);
    ck_assert_uint_eq(c->max_body_size, 2u << 20);
    ck_assert_int_eq(c->shutdown_timeout_ms, 10000);
    ck_assert_str_eq(c->access_log, "/var/log/mg.log");
    ck_assert_int_eq(c->log_level, MG_LOG_DEBUG);
    ck_assert_str_eq(c->admin_host, "127.0.0.1");
    ck_assert_int_eq(c->admin_port, 9901);
    ck_assert_uint_eq(c->nbackends, 2);
    ck_assert_str_eq(c->backends[0].url, "https://api.openai.com/v1");
    ck_assert_str_eq(c->backends[0].api_key, "sk-test-123");
    ck_assert_uint_eq(c->backends[0].nheaders, 1);
    ck_assert_str_eq(c->backends[0].headers[0].name, "OpenAI-Organization");
    ck_assert_str_eq(c->backends[0].headers[0].value, "org-123");
    /* per-backend override on top of the global timeouts */
    ck_assert_int_eq(c->backends[0].timeouts.first_byte_ms, 5000);
    ck_assert_int_eq(c->backends[0].timeouts.connect_ms, 1000);
    ck_assert_int_eq(c->backends[1].timeouts.first_byte_ms, 20000);
    ck_assert_int_eq(c->backends[1].timeouts.total_ms, 120000);
    ck_assert_ptr_null(c->backends[1].api_key);
    ck_assert_uint_eq(c->nrules, 2);
    ck_assert_uint_eq(c->rules[0].nmodels, 2);
    ck_assert_str_eq(c->rules[0].models[1], "gpt-4o-mini");
    ck_assert_str_eq(c->rules[0].owned_by, "openai");
    ck_assert_int_eq(c->rules[0].created, 1715558400);
    ck_assert_int_eq(c->rules[0].list, 0);
    ck_assert_int_eq(c->rules[0].retries, 4);
    ck_assert_uint_eq(c->rules[0].nheaders, 1);
    ck_assert_str_eq(c->rules[0].backends[0].model, "gpt-4o-2024-08-06");
    ck_assert_uint_eq(c->rules[0].backends[0].weight, 3);
    ck_assert_uint_eq(c->rules[0].backends[1].backend, 1);
    ck_assert_int_eq(c->rules[0].backends[1].priority, 1);
    ck_assert_int_eq(c->rules[1].created, 1700000000);
    ck_assert_str_eq(c->rules[1].owned_by, "modelgate");
    ck_assert_int_eq(c->rules[1].list, 1);
    /* retries default: enabled entries - 1; the weight-0 entry does not count */
    ck_assert_int_eq(c->rules[1].retries, 0);
    mg_conf_unref(c);
}
END_TEST

/*
 * health: the defaults (max_cooldown 30s, check_interval off), a backend's keys over the top
 * level's one by one (check_interval included, "0s" turns it off), and cooldown above
 * max_cooldown refused with a message that says to set max_cooldown.
 */
START_TEST(health_keys)
{
    struct mg_conf *c = parse("health: {cooldown: 5s, check_interval: 2s}\n"
                              "backends:\n"
                              "  - {name: a, url: 'http://x/v1'}\n"
                              "  - {name: b, url: 'http://y', health: {check_interval: 0s}}\n"
                              "  - {name: d, url: 'http://y', health: {failures: 1, "
                              "check_interval: 250ms}}\n"
                              "rules: [{models: [m], backends: [{backend: a}]}]\n");

    ck_assert_msg(c != NULL, "%s", errs.data);
    ck_assert_int_eq(c->backends[0].health.failures, 3);
    ck_assert_int_eq(c->backends[0].health.cooldown_ms, 5000);
    ck_assert_int_eq(c->backends[0].health.max_cooldown_ms, 30000);
    ck_assert_int_eq(c->backends[0].health.check_interval_ms, 2000);
    ck_assert_int_eq(c->backends[1].health.check_interval_ms, 0);
    ck_assert_int_eq(c->backends[2].health.failures, 1);
    ck_assert_int_eq(c->backends[2].health.cooldown_ms, 5000);
    ck_assert_int_eq(c->backends[2].health.check_interval_ms, 250);
    mg_conf_unref(c);
    c = parse("backends: [{name: a, url: 'http://x/v1'}]\n"
              "rules: [{models: [m], backends: [{backend: a}]}]\n");
    ck_assert_msg(c != NULL, "%s", errs.data);
    ck_assert_int_eq(c->backends[0].health.cooldown_ms, 10000);
    ck_assert_int_eq(c->backends[0].health.max_cooldown_ms, 30000);
    ck_assert_int_eq(c->backends[0].health.check_interval_ms, 0);
    mg_conf_unref(c);
    /* a cooldown written for the old 5m default of max_cooldown */
    ck_refused("health: {cooldown: 1m}\nbackends: [{name: a, url: 'http://x'}]\n"
               "rules: [{models: [m], backends: [{backend: a}]}]\n",
               "t.yaml:1:9: health: cooldown (60000 ms) is longer than max_cooldown (30000 ms); "
               "set max_cooldown");
    /* ... said once, at the top level, not once for every backend that inherits it */
    ck_refused("health: {cooldown: 1m}\nbackends: [{name: a, url: 'http://x'}, "
               "{name: b, url: 'http://y'}, {name: d, url: 'http://z', health: {failures: 1}}]\n"
               "rules: [{models: [m], backends: [{backend: a}]}]\n", "is longer than max_cooldown");
    {
        const char *first = strstr(errs.data, "is longer than max_cooldown");
        ck_assert_msg(strstr(first + 1, "is longer than max_cooldown") == NULL,
                      "the top level's cooldown error is repeated:\n%s", errs.data);
        ck_assert_ptr_nonnull(strstr(errs.data, "t.yaml:1:9: health: cooldown (60000 ms)"));
    }
    ck_refused("backends: [{name: a, url: 'http://x', health: {cooldown: 10s, max_cooldown: 5s}}]\n"
               "rules: [{models: [m], backends: [{backend: a}]}]\n",
               "set max_cooldown to at least the cooldown");
    ck_refused("health: {check_interval: soon}\nbackends: [{name: a, url: 'http://x'}]\n"
               "rules: [{models: [m], backends: [{backend: a}]}]\n",
               "t.yaml:1:26: bad duration \"soon\" (0s for off");
    ck_refused("health: {check_interval: -1s}\nbackends: [{name: a, url: 'http://x'}]\n"
               "rules: [{models: [m], backends: [{backend: a}]}]\n", "bad duration \"-1s\"");
}
END_TEST

START_TEST(defaults)
{
    struct mg_conf *c = parse("backends: [{name: a, url: 'http://x/v1'}, {name: b, url: 'http://y'}]\n"
                              "rules: [{models: [m], backends: [{backend: a}, {backend: b}]}]\n");

    ck_assert_msg(c != NULL, "%s", errs.data);
    ck_assert_str_eq(c->listen, "127.0.0.1:8080");
    ck_assert_int_eq(c->workers, 0);
    ck_assert_uint_eq(c->max_body_size, 16u << 20);
    ck_assert_int_eq(c->shutdown_timeout_ms, 30000);
    ck_assert_int_eq(c->timeouts.connect_ms, 5000);
    ck_assert_int_eq(c->timeouts.first_byte_ms, 60000);
    ck_assert_int_eq(c->timeouts.idle_ms, 60000);
    ck_assert_int_eq(c->timeouts.total_ms, 600000);
    ck_assert_str_eq(c->access_log, "-");
    ck_assert_int_eq(c->log_level, MG_LOG_INFO);
    ck_assert_ptr_null(c->admin_listen);
    ck_assert_int_eq(c->rules[0].retries, 1);
    ck_assert_int_eq(c->rules[0].created, -1);
    ck_assert_uint_eq(c->rules[0].backends[0].weight, 1);
    ck_assert_int_eq(c->rules[0].backends[0].priority, 0);
    ck_assert_ptr_null(c->rules[0].backends[0].model);
    mg_conf_unref(c);
}
END_TEST

START_TEST(created_forms)
{
    struct mg_conf *c = parse(
        "backends: [{name: a, url: 'http://x'}]\n"
        "rules:\n"
        "  - {models: [m1], created: '2024-05-13T02:00:00+02:00', backends: [{backend: a}]}\n"
        "  - {models: [m2], created: '2024-05-13T00:00:00.250Z', backends: [{backend: a}]}\n"
        "  - {models: [m3], created: '2024-05-13', backends: [{backend: a}]}\n");

    ck_assert_msg(c != NULL, "%s", errs.data);
    ck_assert_int_eq(c->rules[0].created, 1715558400);
    ck_assert_int_eq(c->rules[1].created, 1715558400);
    ck_assert_int_eq(c->rules[2].created, 1715558400);
    mg_conf_unref(c);
    ck_refused("backends: [{name: a, url: 'http://x'}]\n"
               "rules: [{models: [m], created: yesterday, backends: [{backend: a}]}]\n",
               "t.yaml:2:32: bad created \"yesterday\"");
}
END_TEST

START_TEST(access_log_off)
{
    struct mg_conf *c = parse("access_log: off\n");

    ck_assert_msg(c != NULL, "%s", errs.data);
    ck_assert_ptr_null(c->access_log);
    mg_conf_unref(c);
}
END_TEST

START_TEST(errors_with_positions)
{
    ck_refused("listen: 1.2.3.4:80\nlisten2: x\n", "t.yaml:2:1: unknown key \"listen2\"");
    ck_refused("workers: 1\nworkers: 2\n", "t.yaml:2:1: duplicate key \"workers\"");
    ck_refused("timeouts: {connect: 5}\n", "t.yaml:1:21: bad duration \"5\"");
    ck_refused("timeouts: {connect: 0s}\n", "t.yaml:1:21: bad duration");
    ck_refused("max_body_size: 16MB\n", "t.yaml:1:16: bad size \"16MB\"");
    ck_refused("listen: localhost\n", "t.yaml:1:9: bad address");
    ck_refused("log_level: loud\n", "t.yaml:1:12: bad log_level");
    ck_refused("workers: many\n", "t.yaml:1:10: \"many\" is not a whole number");
    ck_refused("backends:\n  - {name: a, url: 'http://x'}\n  - {name: a, url: 'http://y'}\n",
               "t.yaml:3:5: duplicate backend name \"a\"");
    ck_refused("backends:\n  - {name: 'a b', url: 'http://x'}\n", "may only hold");
    ck_refused("backends:\n  - {name: a, url: 'ftp://x'}\n", "t.yaml:2:20: url \"ftp://x\" has "
               "an unsupported scheme");
    /* what would end up in a request line or header, wrong (issue: strict HTTP at both edges) */
    ck_refused("backends:\n  - {name: a, url: 'http://u:p@x/v1'}\n", "has userinfo");
    ck_refused("backends:\n  - {name: a, url: 'http:///v1'}\n", "has no host");
    ck_refused("backends:\n  - {name: a, url: 'http://x/v1#f'}\n", "a query or a fragment");
    ck_refused("backends:\n  - {name: a, url: 'http://x/v1?q=1'}\n", "a query or a fragment");
    ck_refused("backends:\n  - {name: a, url: 'http://x:99999/v1'}\n", "a port outside 1-65535");
    ck_refused("backends:\n  - {name: a, url: 'http://x:0/v1'}\n", "a port outside 1-65535");
    ck_refused("backends:\n  - {name: a, url: 'http://x/${HOME'}\n", "without its \"}\"");
    ck_refused("backends:\n  - {name: a, url: 'http://x', api_key: \"sk\\r\\nX-Evil: 1\"}\n",
               "t.yaml:2:41: value holds a control character");
    ck_refused("backends:\n  - {name: a, url: 'http://x', headers: {h: \"a\\u001b[31m\"}}\n",
               "header value holds a control character");
    /* a backend's headers never frame the request (it would reach the backend malformed),
     * and their names are tokens; a rule may still match on any header, Host included */
    ck_refused("backends:\n  - {name: a, url: 'http://x', headers: {Content-Length: '5'}}\n",
               "t.yaml:2:42: header \"Content-Length\" cannot be set");
    ck_refused("backends:\n  - {name: a, url: 'http://x', headers: {transfer-encoding: x}}\n",
               "header \"transfer-encoding\" cannot be set");
    ck_refused("tracing: {otlp: 'http://c/v1/traces', headers: {Connection: close}}\n",
               "header \"Connection\" cannot be set");
    ck_refused("backends:\n  - {name: a, url: 'http://x', headers: {'a(b': x}}\n",
               "bad header name \"a(b\"");
    {
        struct mg_conf *c = parse("backends: [{name: a, url: 'http://x', headers: {Host: h}}]\n"
                                  "rules: [{models: [m], headers: {host: a.example, "
                                  "content-length: '2'}, backends: [{backend: a}]}]\n");
        ck_assert_msg(c != NULL, "%s", errs.data);
        mg_conf_unref(c);
    }
    ck_refused("backends:\n  - {name: a, url: 'http://x', proxy: 'ftp://p:1'}\n",
               "has an unsupported scheme");
    ck_refused("backends:\n  - {name: a}\n", "t.yaml:2:5: backend \"a\" needs \"url\"");
    ck_refused("backends: [{name: a, url: 'http://x'}]\n"
               "rules:\n  - models: [m]\n    backends:\n      - backend: nope\n",
               "t.yaml:5:9: unknown backend \"nope\"");
    ck_refused("backends: [{name: a, url: 'http://x'}]\n"
               "rules:\n  - models: [m]\n    backends:\n      - {backend: a, weight: -1}\n",
               "t.yaml:5:30: -1 is out of range");
    ck_refused("backends: [{name: a, url: 'http://x'}]\n"
               "rules:\n  - models: []\n    backends: [{backend: a}]\n",
               "t.yaml:3:13: models must not be empty");
    ck_assert_msg(strstr(errs.data, "a rule needs") == NULL,   /* one cause, one error */
                  "an empty models list is also said to be missing:\n%s", errs.data);
    ck_refused("backends: [{name: a, url: 'http://x'}]\n"
               "rules:\n  - models: m\n    backends: [{backend: a}]\n", "t.yaml:3:13:");
    ck_assert_msg(strstr(errs.data, "a rule needs") == NULL, "%s", errs.data);
    ck_refused("backends: [{name: a, url: 'http://x'}]\nrules:\n  - models: [m]\n",
               "t.yaml:3:5: a rule needs at least one entry in \"backends\"");
    ck_refused("backends: [{name: a, url: 'http://x'}]\nrules:\n  - backends: [{backend: a}]\n",
               "t.yaml:3:5: a rule needs \"models\"");
    ck_refused("rules: [{models: [m], backends: [{backend: a, wieght: 2}]}]\n",
               "unknown key \"wieght\"");
    ck_refused("auth:\n  keys: []\n", "t.yaml:2:3: auth needs at least one entry in \"keys\"");
    ck_refused("listen: [a, b]\n", "t.yaml:1:9: listen address must be a scalar, not a list");
    ck_refused("backends: {a: 1}\n", "backends must be a list, not a mapping");
    ck_refused("- 1\n- 2\n", "the top level must be a mapping");
    /* how a backend serves the client APIs chat can carry, and the rule's hosted tools */
    ck_refused("backends:\n  - {name: a, url: 'http://x', responses: bogus}\n",
               "t.yaml:2:5: backend \"a\": \"responses\" must be native or translate");
    ck_refused("backends:\n  - {name: a, url: 'http://x', max_tokens_param: max_len}\n",
               "\"max_tokens_param\" must be max_tokens or max_completion_tokens");
    ck_refused("backends:\n  - {name: a, schema: anthropic, url: 'http://x', api_key: k,"
               " messages: native}\n", "backend \"a\": messages applies only to schema: openai");
    ck_refused("backends:\n  - {name: a, schema: azure, url: 'http://x', api_key: k,"
               " api_version: v, messages: native}\n", "messages applies only to schema: openai");
    ck_refused("backends:\n  - {name: a, schema: bedrock, region: r, aws_access_key_id: a,"
               " aws_secret_access_key: s, responses: native}\n", "responses applies only to");
    ck_refused("backends: [{name: a, url: 'http://x'}]\n"
               "rules: [{models: [m], hosted_tools: maybe, backends: [{backend: a}]}]\n",
               "t.yaml:2:37: hosted_tools must be drop or refuse");
    /* mid-stream resume: the rule's switch, and prefill only where a schema continues */
    ck_refused("backends: [{name: a, url: 'http://x'}]\n"
               "rules: [{models: [m], resume: maybe, backends: [{backend: a}]}]\n",
               "\"maybe\" is not true or false");
    ck_refused("backends:\n  - {name: a, schema: azure, url: 'http://x', api_key: k,"
               " api_version: v, prefill: true}\n",
               "backend \"a\": prefill applies only to schemas openai, anthropic, bedrock and "
               "vertex_anthropic");
    ck_refused("backends:\n  - {name: a, url: 'http://x', prefill: sure}\n",
               "\"sure\" is not true or false");
    ck_refused("responses_store: {size: lots}\n", "bad size \"lots\"");
    ck_refused("responses_store: {size: 1MiB, tll: 1h}\n", "unknown key \"tll\"");
}
END_TEST

/* The keys of the client APIs: their defaults, and what they set for the proxy. */
START_TEST(client_api_keys)
{
    static const char text[] =
                      "responses_store: {size: 1MiB, ttl: 5m}\n"
                      "backends:\n"
                      "  - {name: o, url: 'http://x/v1'}\n"
                      "  - {name: t, url: 'http://x/v1', responses: translate, messages: native,"
                      " max_tokens_param: max_completion_tokens}\n"
                      "  - {name: z, schema: azure, url: 'http://x', api_key: k, api_version: v}\n"
                      "rules:\n"
                      "  - {models: [m], hosted_tools: refuse, backends: [{backend: o}]}\n"
                      "  - {models: [n], backends: [{backend: t}]}\n";
    struct mg_buf errors;
    struct mg_conf *c;

    mg_buf_init(&errors, 4096);
    c = mg_conf_parse("t.yaml", text, strlen(text), &errors);
    ck_assert_msg(c != NULL, "%s", errors.data);
    ck_assert_uint_eq(c->responses_store.size, 1024 * 1024);
    ck_assert_int_eq(c->responses_store.ttl_ms, 5 * 60 * 1000);
    ck_assert_uint_eq(c->backends[0].api_native | c->backends[0].api_hub, 0);
    ck_assert_str_eq(c->backends[0].max_tokens_param, "max_tokens");   /* openai's default */
    ck_assert_uint_eq(c->backends[1].api_hub, MG_API_BIT_RESPONSES);
    ck_assert_uint_eq(c->backends[1].api_native, MG_API_BIT_MESSAGES);
    ck_assert_str_eq(c->backends[1].max_tokens_param, "max_completion_tokens");
    ck_assert_str_eq(c->backends[2].max_tokens_param, "max_completion_tokens");   /* azure's */
    ck_assert_int_eq(c->rules[0].hosted_refuse, 1);
    ck_assert_int_eq(c->rules[1].hosted_refuse, 0);
    ck_assert_int_eq(c->rules[0].resume, 0);   /* resume and prefill: off unless said */
    ck_assert_ptr_null(c->backends[0].prefill);
    mg_conf_unref(c);
    /* prefill: the members a continuation's chat body gets (none where it is native) */
    c = parse("backends:\n"
              "  - {name: v, url: 'http://x/v1', prefill: true}\n"
              "  - {name: a, schema: anthropic, url: 'http://x', api_key: k, prefill: true}\n"
              "  - {name: b, schema: bedrock, region: r, aws_access_key_id: a,"
              " aws_secret_access_key: s, prefill: true}\n"
              "  - {name: n, url: 'http://x/v1', prefill: false}\n"
              "rules: [{models: [m], resume: true, backends: [{backend: v}, {backend: a}]}]\n");
    ck_assert_msg(c != NULL, "%s", errs.data);
    ck_assert_int_eq(c->rules[0].resume, 1);
    ck_assert_str_eq(c->backends[0].prefill,
                     "\"continue_final_message\":true,\"add_generation_prompt\":false");
    ck_assert_str_eq(c->backends[1].prefill, "");
    ck_assert_str_eq(c->backends[2].prefill, "");
    ck_assert_ptr_null(c->backends[3].prefill);
    mg_conf_unref(c);
    /* the default store: 64 MiB for an hour */
    c = parse("backends: [{name: a, url: 'http://x/v1'}]\n"
              "rules: [{models: [m], backends: [{backend: a}]}]\n");
    ck_assert_msg(c != NULL, "%s", errs.data);
    ck_assert_uint_eq(c->responses_store.size, 64 * 1024 * 1024);
    ck_assert_int_eq(c->responses_store.ttl_ms, 3600 * 1000);
    mg_conf_unref(c);
    mg_buf_deinit(&errors);
}
END_TEST

/*
 * No config string that reaches a request may hold a control character: each such key, with a
 * CR LF (a header injection: "X-Evil: 1" would be sent to the backend), a lone LF and an ESC,
 * is an error at the value's own line and column.
 */
START_TEST(no_control_characters_in_request_strings)
{
    static const struct {
        const char *before;   /* a backend that is valid but for the key */
        const char *key;
        const char *want;
    } cases[] = {
        {"    schema: azure\n    url: 'http://x'\n    api_key: k\n", "api_version",
         "value holds a control character"},
        {"    schema: anthropic\n    url: 'http://x'\n    api_key: k\n", "anthropic_version",
         "value holds a control character"},
        {"    schema: bedrock\n    aws_access_key_id: AK\n    aws_secret_access_key: SK\n",
         "region", "value holds a control character"},
        {"    schema: bedrock\n    region: eu-west-1\n    aws_secret_access_key: SK\n",
         "aws_access_key_id", "value holds a control character"},
        {"    schema: bedrock\n    region: eu-west-1\n    aws_access_key_id: AK\n",
         "aws_secret_access_key", "value holds a control character"},
        {"    schema: bedrock\n    region: eu-west-1\n    aws_access_key_id: AK\n"
         "    aws_secret_access_key: SK\n", "aws_session_token",
         "value holds a control character"},
        {"    url: 'http://x'\n", "api_key", "value holds a control character"},
        {"", "url", "has a control character or a space"},
    };
    static const char *const bad[] = {"v1\\r\\nX-Evil: 1", "v1\\n", "v1\\u001b[31m", "v1\\u007f"};
    char text[1024], want[256];
    struct mg_conf *c;
    size_t i, j;
    int line;

    for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
        for (j = 0; j < MG_ARRAY_LEN(bad); j++) {
            const char *b = cases[i].before;
            line = 3;   /* "backends:", "  - name: a", then the lines before */
            for (; *b; b++) {
                line += *b == '\n';
            }
            snprintf(text, sizeof(text), "backends:\n  - name: a\n%s    %s: \"%s%s\"\n",
                     cases[i].before, cases[i].key, strcmp(cases[i].key, "url") == 0 ?
                     "http://x/" : "", bad[j]);
            /* the column of the value: 4 spaces, the key, ": ", then the quote */
            snprintf(want, sizeof(want), "t.yaml:%d:%zu: ", line, 4 + strlen(cases[i].key) + 3);
            ck_refused(text, want);
            ck_refused(text, cases[i].want);
        }
        /* the same value without the control character loads (the case is otherwise valid) */
        snprintf(text, sizeof(text), "backends:\n  - name: a\n%s    %s: \"%sv1\"\n",
                 cases[i].before, cases[i].key, strcmp(cases[i].key, "url") == 0 ?
                 "http://x/" : "");
        c = parse(text);
        ck_assert_msg(c != NULL, "%s\n%s", text, errs.data);
        mg_conf_unref(c);
    }
    /* headers, and a client key, the same */
    ck_refused("backends:\n  - name: a\n    url: 'http://x'\n    headers:\n"
               "      h: \"a\\r\\nb: c\"\n",
               "t.yaml:5:10: header value holds a control character");
    ck_refused("auth:\n  keys:\n    - name: a\n      key: \"0123456789abcdef\\r\\nX: 1\"\n",
               "t.yaml:4:12: the key of \"a\" holds control characters");
    /* a newline that comes from the environment is refused just the same */
    setenv("MG_TEST_NL", "2023-06-01\r\nX-Evil: 1", 1);
    ck_refused("backends:\n  - name: a\n    schema: anthropic\n    url: 'http://x'\n"
               "    api_key: k\n    anthropic_version: ${MG_TEST_NL}\n",
               "t.yaml:6:24: value holds a control character");
    unsetenv("MG_TEST_NL");
}
END_TEST

START_TEST(yaml_syntax_error_position)
{
    ck_refused("listen: 127.0.0.1:8080\nbackends:\n  - name: a\n   url: x\n", "t.yaml:4:");
    ck_refused("key: \"unterminated\n", "t.yaml:");
}
END_TEST

START_TEST(all_errors_at_once)
{
    struct mg_conf *c = parse("workers: x\nmax_body_size: y\nlog_level: z\nbogus: 1\n");
    int lines = 0;
    const char *p;

    ck_assert_ptr_null(c);
    for (p = errs.data; p && *p; p++) {
        lines += *p == '\n';
    }
    ck_assert_int_eq(lines, 4);
    ck_assert_ptr_nonnull(strstr(errs.data, "t.yaml:1:10:"));
    ck_assert_ptr_nonnull(strstr(errs.data, "t.yaml:2:16:"));
    ck_assert_ptr_nonnull(strstr(errs.data, "t.yaml:3:12:"));
    ck_assert_ptr_nonnull(strstr(errs.data, "t.yaml:4:1:"));
}
END_TEST

START_TEST(env_substitution)
{
    struct mg_conf *c;

    setenv("MG_TEST_HOST", "10.1.2.3", 1);
    unsetenv("MG_TEST_UNSET");
    c = parse("backends: [{name: a, url: 'http://${MG_TEST_HOST}:80/v1', api_key: 'k-${MG_TEST_HOST}'}]\n");
    ck_assert_msg(c != NULL, "%s", errs.data);
    ck_assert_str_eq(c->backends[0].url, "http://10.1.2.3:80/v1");
    ck_assert_str_eq(c->backends[0].api_key, "k-10.1.2.3");
    mg_conf_unref(c);
    ck_refused("backends: [{name: a, url: 'http://x', api_key: '${MG_TEST_UNSET}'}]\n",
               "t.yaml:1:48: environment variable MG_TEST_UNSET is not set");
}
END_TEST

START_TEST(load_file)
{
    struct mg_buf e;
    struct mg_conf *c;

    mg_buf_init(&e, 4096);
    c = mg_conf_load("conf/modelgate.yaml", NULL, &e);
    ck_assert_msg(c != NULL, "the shipped config must load: %s", e.data);
    mg_conf_unref(c);
    ck_assert_ptr_null(mg_conf_load("/nonexistent/x.yaml", NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.data, "/nonexistent/x.yaml:1:1: cannot open"));
    mg_buf_deinit(&e);
}
END_TEST

START_TEST(refcount)
{
    struct mg_conf *c = parse("workers: 1\n");

    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_eq(mg_conf_ref(c), c);
    mg_conf_unref(c);
    ck_assert_int_eq(c->workers, 1);   /* still alive: one reference left */
    mg_conf_unref(c);
    mg_conf_unref(NULL);
}
END_TEST

/*
 * Keys of another schema than the backend's: each schema's table parses its own keys, so the
 * loader must still report value errors where they stand, then every misplaced key (those one
 * schema owns in table order, then shared ones), then the backend's schema's needs. The whole
 * output, as the loader gave it when every key sat in struct mg_backend.
 */
START_TEST(misplaced_schema_keys_in_order)
{
    static const char text[] =
        "backends:\n"
        "  - {region: '', max_tokens: abc, name: x, url: 'http://h', api_version: '',"
        " anthropic_version: v, aws_session_token: ''}\n"
        "  - {max_tokens: 7, region: r, name: y, schema: azure, url: 'http://h'}\n";
    static const char want[] =
        "t.yaml:2:14: value must not be empty\n"
        "t.yaml:2:30: \"abc\" is not a whole number\n"
        "t.yaml:2:74: value must not be empty\n"
        "t.yaml:2:5: backend \"x\": api_version applies only to schema: azure\n"
        "t.yaml:2:5: backend \"x\": anthropic_version applies only to schema: anthropic\n"
        "t.yaml:2:5: backend \"x\": aws_session_token applies only to schema: bedrock\n"
        "t.yaml:2:5: backend \"x\": region applies only to schemas bedrock, vertex and "
        "vertex_anthropic\n"
        "t.yaml:3:5: backend \"y\": max_tokens applies only to schemas anthropic, bedrock, vertex "
        "and vertex_anthropic\n"
        "t.yaml:3:5: backend \"y\": region applies only to schemas bedrock, vertex and "
        "vertex_anthropic\n"
        "t.yaml:3:5: backend \"y\" (schema: azure) needs \"api_version\"\n"
        "t.yaml:3:5: backend \"y\" (schema: azure) needs \"api_key\" or \"azure_ad\"\n";

    ck_assert_ptr_null(parse(text));
    ck_assert_str_eq(errs.data, want);
}
END_TEST

/* A schema's keys before `schema:` land in that schema's own struct, ${VAR} in schema too. */
START_TEST(schema_keys_before_schema)
{
    struct mg_conf *c;

    setenv("MG_TEST_SCHEMA", "bedrock", 1);
    c = parse("backends:\n"
              "  - {region: eu-west-1, aws_access_key_id: a, aws_secret_access_key: s,"
              " max_tokens: 9, name: b, schema: '${MG_TEST_SCHEMA}'}\n");
    unsetenv("MG_TEST_SCHEMA");
    ck_assert_msg(c != NULL, "%s", errs.data);
    ck_assert_str_eq(c->backends[0].url, "https://bedrock-runtime.eu-west-1.amazonaws.com");
    ck_assert_ptr_nonnull(c->backends[0].schema_conf);
    mg_conf_unref(c);
}
END_TEST

/* ---- the engine (mg_yaml) on its own ---- */

struct thing {
    char    *name;
    int64_t  wait_ms;
    int      on;
    int      others;
};

static int
take_other(struct mg_yaml *y, const char *key, yaml_node_t *value, void *base, int *rc)
{
    struct thing *t = base;

    if (strncmp(key, "x-", 2) != 0) {
        return 0;
    }
    t->others++;
    *rc = MG_OK;
    return 1;
}

START_TEST(engine_table_walk)
{
    static const struct mg_yaml_key keys[] = {
        {"name", mg_yaml_set_nonempty, offsetof(struct thing, name)},
        {"wait", mg_yaml_set_duration, offsetof(struct thing, wait_ms)},
        {"on", mg_yaml_set_bool, offsetof(struct thing, on)},
    };
    static const char text[] = "name: ${MG_TEST_NAME}\nwait: 2s\non: yes\nx-a: 1\nx-b: [1]\n"
                               "bad: 1\non: no\nwait: -1\n";
    struct thing t;
    struct mg_yaml y;
    yaml_node_t *root;
    char *peek;

    mg_buf_deinit(&errs);
    mg_buf_init(&errs, 1 << 20);
    memset(&t, 0, sizeof(t));
    setenv("MG_TEST_NAME", "n1", 1);
    ck_assert_int_eq(mg_yaml_load(&y, "e.yaml", text, strlen(text), &errs, &root), MG_OK);
    ck_assert_ptr_nonnull(root);
    peek = mg_yaml_peek(&y, root, "name");
    ck_assert_str_eq(peek, "n1");
    free(peek);
    ck_assert_ptr_null(mg_yaml_peek(&y, root, "nope"));
    ck_assert_int_eq(mg_yaml_mapping_with(&y, root, keys, MG_ARRAY_LEN(keys), &t, "a thing",
                                          take_other), MG_ERR);
    unsetenv("MG_TEST_NAME");
    ck_assert_str_eq(t.name, "n1");
    ck_assert_int_eq(t.wait_ms, 2000);
    ck_assert_int_eq(t.on, 1);
    ck_assert_int_eq(t.others, 2);
    ck_assert_int_eq(y.nerrors, 3);
    ck_assert_str_eq(errs.data, "e.yaml:6:1: unknown key \"bad\" in a thing\n"
                                "e.yaml:7:1: duplicate key \"on\" in a thing\n"
                                "e.yaml:8:1: duplicate key \"wait\" in a thing\n");
    free(t.name);
    mg_yaml_deinit(&y);
    ck_assert_ptr_null(mg_yaml_url_problem("https://h:1/p", (const char *const[]){"https://",
                                                                                  NULL}));
    ck_assert_str_eq(mg_yaml_url_problem("https://u@h", (const char *const[]){"https://", NULL}),
                     "userinfo (user:password@)");
    ck_assert(mg_yaml_name_ok("a-b.c_9"));
    ck_assert(!mg_yaml_name_ok("a b"));
}
END_TEST

static void
teardown(void)
{
    mg_buf_deinit(&errs);
}

Suite *
conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *t = tcase_create("load");

    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_add_test(t, full_config);
    tcase_add_test(t, defaults);
    tcase_add_test(t, health_keys);
    tcase_add_test(t, created_forms);
    tcase_add_test(t, access_log_off);
    tcase_add_test(t, errors_with_positions);
    tcase_add_test(t, client_api_keys);
    tcase_add_test(t, no_control_characters_in_request_strings);
    tcase_add_test(t, yaml_syntax_error_position);
    tcase_add_test(t, all_errors_at_once);
    tcase_add_test(t, env_substitution);
    tcase_add_test(t, load_file);
    tcase_add_test(t, refcount);
    tcase_add_test(t, misplaced_schema_keys_in_order);
    tcase_add_test(t, schema_keys_before_schema);
    tcase_add_test(t, engine_table_walk);
    suite_add_tcase(s, t);
    return s;
}
