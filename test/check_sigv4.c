/*
 * Unit tests: SigV4 against AWS's published test suite, a Bedrock request, the key cache.
 *
 * The suite vectors are data copied from awslabs/aws-c-auth, tests/aws-signing-test-suite/v4/
 * <name>/{context.json,request.txt,header-canonical-request.txt,header-string-to-sign.txt,
 * header-signed-request.txt} (AWS's SigV4 test suite: credentials AKIDEXAMPLE, region us-east-1,
 * service "service", 20150830T123600Z). Those whose context.json says "sign_body": true are the
 * ones that sign x-amz-content-sha256 (payload_header = 1 here).
 */
#include <string.h>

#include "mg_sigv4.h"
#include "mg_test.h"

#define SUITE_TIME 1440938160       /* 2015-08-30T12:36:00Z */

static const struct mg_sigv4_creds suite_creds = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL
};

/* credentials.token of post-sts-header-before/context.json */
#define SUITE_STS_TOKEN                                                                          \
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmx" \
    "fpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0" \
    "KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lI" \
    "ZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

struct vector {
    const char *name;
    const char *method;
    const char *path;
    const char *query;
    struct mg_sigv4_header headers[3];
    size_t nheaders;
    const char *body;
    const char *token;
    int payload_header;
    const char *creq;
    const char *sts;
    const char *authz;
};

/*
 * Inputs transcribed from each request.txt (header lines as written there, value after the colon
 * kept raw so that trimming is the signer's job); expected texts copied verbatim.
 */
static const struct vector vectors[] = {
    {
        "get-vanilla", "GET",
        "/",
        "",
        { { NULL, NULL } }, 0,
        "",
        NULL, 0,
        "GET\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae"
        "1d763fbf31",
    },
    {
        "post-vanilla", "POST",
        "/",
        "",
        { { NULL, NULL } }, 0,
        "",
        NULL, 0,
        "POST\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;x-amz-date, "
        "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e"
        "92efbe5d6b",
    },
    {
        "get-vanilla-query-order-key-case", "GET",
        "/",
        "Param2=value2&Param1=value1",
        { { NULL, NULL } }, 0,
        "",
        NULL, 0,
        "GET\n"
        "/\n"
        "Param1=value1&Param2=value2\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;x-amz-date, "
        "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219e"
        "c94cdf2500",
    },
    {
        "get-vanilla-query-order-encoded", "GET",
        "/",
        "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
        { { NULL, NULL } }, 0,
        "",
        NULL, 0,
        "GET\n"
        "/\n"
        "%E1%88%B4=Value1&Param=Value2&Param-3=Value3\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;x-amz-date, "
        "Signature=371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e"
        "595648fcac",
    },
    {
        "get-vanilla-utf8-query", "GET",
        "/",
        "\xe1\x88\xb4=bar",
        { { NULL, NULL } }, 0,
        "",
        NULL, 0,
        "GET\n"
        "/\n"
        "%E1%88%B4=bar\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;x-amz-date, "
        "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9"
        "027818dd04",
    },
    {
        "get-unreserved", "GET",
        "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "",
        { { NULL, NULL } }, 0,
        "",
        NULL, 0,
        "GET\n"
        "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n"
        "\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;x-amz-date, "
        "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a"
        "65bbf5f24f",
    },
    {
        "get-utf8", "GET",
        "/\xe1\x88\xb4",
        "",
        { { NULL, NULL } }, 0,
        "",
        NULL, 0,
        "GET\n"
        "/%E1%88%B4\n"
        "\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;x-amz-date, "
        "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd0"
        "3141be5d85",
    },
    {
        "get-header-key-duplicate", "GET",
        "/",
        "",
        {
            { "My-Header1", "value2" },
            { "My-Header1", "value2" },
            { "My-Header1", "value1" },
        }, 3,
        "",
        NULL, 0,
        "GET\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "my-header1:value2,value2,value1\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;my-header1;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;my-header1;x-amz-date, "
        "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b"
        "4468f858259531a5138ea",
    },
    {
        "get-header-value-trim", "GET",
        "/",
        "",
        {
            { "My-Header1", " value1" },
            { "My-Header2", " \"a   b   c\"" },
        }, 2,
        "",
        NULL, 0,
        "GET\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "my-header1:value1\n"
        "my-header2:\"a b c\"\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;my-header1;my-header2;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;my-header1;my-header2;x-amz-date, "
        "Signature=acc3ed3afb60bb290fc8d2dd0098b991"
        "1fcaa05412b367055dee359757a9c736",
    },
    {
        "post-header-key-sort", "POST",
        "/",
        "",
        {
            { "My-Header1", "value1" },
        }, 1,
        "",
        NULL, 0,
        "POST\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "my-header1:value1\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;my-header1;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;my-header1;x-amz-date, "
        "Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e"
        "1461ec8f8916fdf18852c",
    },
    {
        "post-header-value-case", "POST",
        "/",
        "",
        {
            { "My-Header1", "VALUE1" },
        }, 1,
        "",
        NULL, 0,
        "POST\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "my-header1:VALUE1\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;my-header1;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;my-header1;x-amz-date, "
        "Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8a"
        "e67b53629efa58b974b7d",
    },
    {
        "post-x-www-form-urlencoded", "POST",
        "/",
        "",
        {
            { "Content-Type", "application/x-www-form-urlencoded" },
            { "Content-Length", "13" },
        }, 2,
        "Param1=value1",
        NULL, 1,
        "POST\n"
        "/\n"
        "\n"
        "content-length:13\n"
        "content-type:application/x-www-form-urlencoded\n"
        "host:example.amazonaws.com\n"
        "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n"
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, "
        "Signature=d3875"
        "051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
    },
    {
        "post-x-www-form-urlencoded-parameters", "POST",
        "/",
        "",
        {
            { "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" },
            { "Content-Length", "13" },
        }, 2,
        "Param1=value1",
        NULL, 1,
        "POST\n"
        "/\n"
        "\n"
        "content-length:13\n"
        "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
        "host:example.amazonaws.com\n"
        "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n"
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "a89f1a5b53e37702ee6363ce1da3ce8f54386f3c8f352ae652153c2982a0bc4d",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, "
        "Signature=328d1"
        "b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422",
    },
    {
        "get-vanilla-with-session-token", "GET",
        "/",
        "",
        { { NULL, NULL } }, 0,
        "",
        "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267", 0,
        "GET\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "x-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n"
        "\n"
        "host;x-amz-date;x-amz-security-token\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;x-amz-date;x-amz-security-token, "
        "Signature=07ec1639c89043aa0e3e2de82b96708f1"
        "98cceab042d4a97044c66dd9f74e7f8",
    },
    {
        "post-sts-header-before", "POST",
        "/",
        "",
        { { NULL, NULL } }, 0,
        "",
        SUITE_STS_TOKEN, 0,
        "POST\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "x-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW"
        "LWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2"
        "wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38x"
        "Vqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oL"
        "xBA==\n"
        "\n"
        "host;x-amz-date;x-amz-security-token\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n"
        "20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedH"
        "eaders=host;x-amz-date;x-amz-security-token, "
        "Signature=85d96828115b5dc0cfc3bd16ad9e210dd"
        "772bbebba041836c64533a82be05ead",
    },
};

static void
check_vector(const struct vector *v, struct mg_sigv4_cache *cache)
{
    struct mg_sigv4_creds creds = suite_creds;
    struct mg_sigv4_request req;
    struct mg_sigv4_result res;
    struct mg_buf creq, sts;

    mg_buf_init(&creq, 4096);
    mg_buf_init(&sts, 4096);
    memset(&req, 0, sizeof(req));
    req.method = v->method;
    req.host = "example.amazonaws.com";
    req.path = v->path;
    req.query = v->query;
    req.headers = v->headers;
    req.nheaders = v->nheaders;
    req.body = v->body;
    req.body_len = strlen(v->body);
    req.region = "us-east-1";
    req.service = "service";
    req.payload_header = v->payload_header;
    req.creq_out = &creq;
    req.sts_out = &sts;
    creds.session_token = v->token;

    ck_assert_msg(mg_sigv4_sign(&req, &creds, SUITE_TIME, cache, &res) == MG_OK, "%s: %s",
                  v->name, res.error);
    ck_assert_msg(strcmp(creq.data, v->creq) == 0, "%s: canonical request\n%s\n--- want\n%s",
                  v->name, creq.data, v->creq);
    ck_assert_msg(strcmp(sts.data, v->sts) == 0, "%s: string to sign\n%s\n--- want\n%s", v->name,
                  sts.data, v->sts);
    ck_assert_msg(strcmp(res.authorization, v->authz) == 0, "%s: authorization\n%s\n--- want\n%s",
                  v->name, res.authorization, v->authz);
    ck_assert_str_eq(res.amz_date, "20150830T123600Z");
    mg_buf_deinit(&creq);
    mg_buf_deinit(&sts);
}

START_TEST(aws_suite)
{
    struct mg_sigv4_cache cache;
    size_t i;

    mg_sigv4_cache_init(&cache);
    for (i = 0; i < MG_ARRAY_LEN(vectors); i++) {
        check_vector(&vectors[i], NULL);
        check_vector(&vectors[i], &cache);
    }
    /* one day, one region, one service, one secret: one derivation for the whole suite */
    ck_assert_uint_eq(cache.derivations, 1);
    mg_sigv4_cache_deinit(&cache);
}
END_TEST

/*
 * A Converse call as the bedrock backend will send it. Expected values computed independently,
 * twice, and agreeing: with python3's hashlib/hmac following AWS's SigV4 steps (path segments
 * quoted again with urllib.parse.quote(safe="-_.~")), and with botocore 1.43.11
 * (SigV4Auth(Credentials(AK, SK[, token]), "bedrock", "us-east-1").add_auth() on an AWSRequest
 * POST to the URL below with data=BEDROCK_BODY and Content-Type: application/json, its clock
 * patched to 2024-05-01T12:00:00Z).
 */
#define BEDROCK_HOST "bedrock-runtime.us-east-1.amazonaws.com"
#define BEDROCK_BODY \
    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hello\"}]}]," \
    "\"inferenceConfig\":{\"maxTokens\":64}}"
#define BEDROCK_TIME 1714564800     /* 2024-05-01T12:00:00Z */

static void
bedrock_request(struct mg_sigv4_request *req, const struct mg_sigv4_header *ct,
                struct mg_buf *model_path)
{
    const char *model = "anthropic.claude-3-haiku-20240307-v1:0";

    mg_buf_init(model_path, 256);
    ck_assert_int_eq(mg_buf_adds(model_path, "/model/"), MG_OK);
    ck_assert_int_eq(mg_sigv4_encode_segment(model_path, model, strlen(model)), MG_OK);
    ck_assert_int_eq(mg_buf_adds(model_path, "/converse"), MG_OK);
    ck_assert_str_eq(model_path->data, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");

    memset(req, 0, sizeof(*req));
    req->method = "POST";
    req->host = BEDROCK_HOST;
    req->path = model_path->data;
    req->headers = ct;
    req->nheaders = 1;
    req->body = BEDROCK_BODY;
    req->body_len = strlen(BEDROCK_BODY);
    req->region = "us-east-1";
    req->service = "bedrock";
}

START_TEST(bedrock_converse)
{
    static const struct mg_sigv4_header ct = { "Content-Type", "application/json" };
    struct mg_sigv4_creds creds = suite_creds;
    struct mg_sigv4_request req;
    struct mg_sigv4_result res;
    struct mg_sigv4_cache cache;
    struct mg_buf path, creq;

    mg_sigv4_cache_init(&cache);
    mg_buf_init(&creq, 4096);
    bedrock_request(&req, &ct, &path);
    req.creq_out = &creq;
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME, &cache, &res), MG_OK);
    ck_assert_str_eq(creq.data,
                     "POST\n"
                     "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n"
                     "\n"
                     "content-type:application/json\n"
                     "host:bedrock-runtime.us-east-1.amazonaws.com\n"
                     "x-amz-date:20240501T120000Z\n"
                     "\n"
                     "content-type;host;x-amz-date\n"
                     "f5b802cc64a01910fd197a46e9e959f3a5795f7728fa5710fb28f1ec3019f545");
    ck_assert_str_eq(res.authorization,
                     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/bedrock/"
                     "aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
                     "704b4d5974ffdd89923279a377cba645b0d3078f58f876e515df8e4c9ff3b9f9");
    /* what the caller adds: x-amz-date and authorization, no content hash, no token */
    ck_assert_uint_eq(res.nheaders, 2);
    ck_assert_str_eq(res.headers[0].name, "x-amz-date");
    ck_assert_str_eq(res.headers[0].value, "20240501T120000Z");
    ck_assert_str_eq(res.headers[1].name, "authorization");
    ck_assert_ptr_eq(res.headers[1].value, res.authorization);

    /* stable: the same inputs sign the same, from the cache or not */
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME, NULL, &res), MG_OK);
    ck_assert_str_eq(res.signature,
                     "704b4d5974ffdd89923279a377cba645b0d3078f58f876e515df8e4c9ff3b9f9");

    /* with a session token: signed, and handed back as a header to send */
    creds.session_token = "FQoGZXIvYXdzEXAMPLETOKEN//////////wEaDM";
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME, &cache, &res), MG_OK);
    ck_assert_str_eq(res.authorization,
                     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/bedrock/"
                     "aws4_request, SignedHeaders=content-type;host;x-amz-date;"
                     "x-amz-security-token, Signature="
                     "6ed8eeb44a024b8f8ac44cd6a11089b6e32d396724435e6ef7f298a69f6f1463");
    ck_assert_uint_eq(res.nheaders, 3);
    ck_assert_str_eq(res.headers[1].name, "x-amz-security-token");
    ck_assert_str_eq(res.headers[1].value, creds.session_token);
    ck_assert_uint_eq(cache.derivations, 1);

    /* one byte more in the body is another signature */
    req.body_len--;
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME, &cache, &res), MG_OK);
    ck_assert_str_ne(res.signature,
                     "6ed8eeb44a024b8f8ac44cd6a11089b6e32d396724435e6ef7f298a69f6f1463");
    mg_buf_deinit(&path);
    mg_buf_deinit(&creq);
    mg_sigv4_cache_deinit(&cache);
}
END_TEST

START_TEST(key_cache)
{
    static const struct mg_sigv4_header ct = { "Content-Type", "application/json" };
    struct mg_sigv4_creds creds = suite_creds;
    struct mg_sigv4_request req;
    struct mg_sigv4_result res, uncached;
    struct mg_sigv4_cache cache;
    struct mg_buf path;

    mg_sigv4_cache_init(&cache);
    bedrock_request(&req, &ct, &path);
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME, &cache, &res), MG_OK);
    ck_assert_uint_eq(cache.derivations, 1);
    /* later the same day (UTC): the cached key, and the right signature with it */
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME + 11 * 3600 + 59 * 60 + 59, &cache,
                                   &res), MG_OK);
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME + 11 * 3600 + 59 * 60 + 59, NULL,
                                   &uncached), MG_OK);
    ck_assert_str_eq(res.amz_date, "20240501T235959Z");
    ck_assert_str_eq(res.signature, uncached.signature);
    ck_assert_uint_eq(cache.derivations, 1);
    /* the next day: derived again */
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME + 12 * 3600, &cache, &res), MG_OK);
    ck_assert_str_eq(res.amz_date, "20240502T000000Z");
    ck_assert_uint_eq(cache.derivations, 2);
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME + 12 * 3600, NULL, &uncached),
                     MG_OK);
    ck_assert_str_eq(res.signature, uncached.signature);
    /* another region, another service, a rotated secret: each its own key */
    req.region = "eu-west-3";
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME + 12 * 3600, &cache, &res), MG_OK);
    ck_assert_uint_eq(cache.derivations, 3);
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME + 12 * 3600, NULL, &uncached),
                     MG_OK);
    ck_assert_str_eq(res.signature, uncached.signature);
    req.service = "bedrock-agent";
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME + 12 * 3600, &cache, &res), MG_OK);
    ck_assert_uint_eq(cache.derivations, 4);
    creds.secret_access_key = "another/secret+EXAMPLEKEY0000000000000000";
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME + 12 * 3600, &cache, &res), MG_OK);
    ck_assert_uint_eq(cache.derivations, 5);
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME + 12 * 3600, NULL, &uncached),
                     MG_OK);
    ck_assert_str_eq(res.signature, uncached.signature);
    /* a new access key id with the same secret keeps the key (it is not part of it) */
    creds.access_key_id = "AKIDOTHER";
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, BEDROCK_TIME + 12 * 3600, &cache, &res), MG_OK);
    ck_assert_uint_eq(cache.derivations, 5);
    ck_assert_str_eq(res.signature, uncached.signature);
    mg_sigv4_cache_deinit(&cache);
    ck_assert_int_eq(cache.valid, 0);
    mg_buf_deinit(&path);
}
END_TEST

START_TEST(segment_encoding)
{
    struct mg_buf b;

    mg_buf_init(&b, 64);
    ck_assert_int_eq(mg_sigv4_encode_segment(&b, "a-Z_0.9~", 8), MG_OK);
    ck_assert_str_eq(b.data, "a-Z_0.9~");
    mg_buf_reset(&b);
    ck_assert_int_eq(mg_sigv4_encode_segment(&b, "v1:0/x y%+\xe1\x88\xb4", 13), MG_OK);
    ck_assert_str_eq(b.data, "v1%3A0%2Fx%20y%25%2B%E1%88%B4");
    mg_buf_reset(&b);
    /* an ARN as a model id: every ':' and '/' encoded */
    ck_assert_int_eq(mg_sigv4_encode_segment(&b, "arn:aws:x/y", 11), MG_OK);
    ck_assert_str_eq(b.data, "arn%3Aaws%3Ax%2Fy");
    mg_buf_deinit(&b);
    /* the cap holds */
    mg_buf_init(&b, 4);
    ck_assert_int_eq(mg_sigv4_encode_segment(&b, "ab:", 3), MG_ETOOBIG);
    mg_buf_deinit(&b);
}
END_TEST

START_TEST(canonical_details)
{
    static const struct mg_sigv4_header hs[] = {
        { "X-Custom", "\t one \t two  three " },
        { "content-type", "application/json" },
    };
    struct mg_sigv4_request req;
    struct mg_sigv4_result res;
    struct mg_buf creq;

    mg_buf_init(&creq, 4096);
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.host = "h.example";
    req.path = "";
    req.query = "b=2&a=%7e%2f&&a=1&c&=v&a%3d=x";
    req.headers = hs;
    req.nheaders = 2;
    req.region = "r";
    req.service = "s";
    req.creq_out = &creq;
    ck_assert_int_eq(mg_sigv4_sign(&req, &suite_creds, 0, NULL, &res), MG_OK);
    /* empty path is "/"; query re-encoded (%7e is '~', %2f is '/'), empty pairs dropped, a
     * parameter without '=' gets an empty value, sorted by name then value */
    ck_assert_str_eq(creq.data,
                     "GET\n"
                     "/\n"
                     "=v&a=1&a=~%2F&a%3D=x&b=2&c=\n"
                     "content-type:application/json\n"
                     "host:h.example\n"
                     "x-amz-date:19700101T000000Z\n"
                     "x-custom:one two three\n"
                     "\n"
                     "content-type;host;x-amz-date;x-custom\n"
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* S3 keeps the path as sent */
    mg_buf_reset(&creq);
    req.query = NULL;
    req.path = "/a%3Ab/c d";
    req.service = "s3";
    ck_assert_int_eq(mg_sigv4_sign(&req, &suite_creds, 0, NULL, &res), MG_OK);
    ck_assert(strncmp(creq.data, "GET\n/a%3Ab/c d\n\n", 16) == 0);
    mg_buf_reset(&creq);
    req.service = "s";
    ck_assert_int_eq(mg_sigv4_sign(&req, &suite_creds, 0, NULL, &res), MG_OK);
    ck_assert(strncmp(creq.data, "GET\n/a%253Ab/c%20d\n\n", 20) == 0);
    mg_buf_deinit(&creq);
}
END_TEST

START_TEST(bad_inputs)
{
    struct mg_sigv4_header hs[MG_SIGV4_MAX_HEADERS + 1];
    struct mg_sigv4_creds creds = suite_creds;
    struct mg_sigv4_request req;
    struct mg_sigv4_result res;
    struct mg_buf small;
    size_t i;

    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.host = "h.example";
    req.path = "/";
    req.region = "us-east-1";
    req.service = "bedrock";
    req.headers = hs;

    /* headers the signer sets itself */
    req.nheaders = 1;
    hs[0] = (struct mg_sigv4_header){ "Host", "other" };
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ERR);
    ck_assert_ptr_nonnull(res.error);
    hs[0] = (struct mg_sigv4_header){ "X-Amz-Date", "20150830T123600Z" };
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ERR);
    hs[0] = (struct mg_sigv4_header){ "authorization", "x" };
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ERR);
    /* header injection */
    hs[0] = (struct mg_sigv4_header){ "X-A", "v\r\nX-B: w" };
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ERR);
    hs[0] = (struct mg_sigv4_header){ "X A", "v" };
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ERR);
    creds.session_token = "tok\nen";
    hs[0] = (struct mg_sigv4_header){ "X-A", "v" };
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ERR);
    creds.session_token = "";       /* an empty token is no token */
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_OK);
    ck_assert_uint_eq(res.nheaders, 2);
    ck_assert_ptr_null(strstr(res.authorization, "security-token"));
    /* too many headers */
    for (i = 0; i < MG_ARRAY_LEN(hs); i++) {
        hs[i] = (struct mg_sigv4_header){ "X-A", "v" };
    }
    req.nheaders = MG_SIGV4_MAX_HEADERS;
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_OK);
    req.nheaders = MG_SIGV4_MAX_HEADERS + 1;
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ERR);
    req.nheaders = 0;
    /* missing or odd credentials, region, time */
    creds.secret_access_key = "";
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ERR);
    creds = suite_creds;
    creds.access_key_id = NULL;
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ERR);
    creds = suite_creds;
    req.region = "us/east";
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ERR);
    req.region = "us-east-1";
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, -1, NULL, &res), MG_ERR);
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, INT64_MAX, NULL, &res), MG_ERR);
    /* a debug buffer too small is reported, not overrun */
    mg_buf_init(&small, 16);
    req.creq_out = &small;
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ETOOBIG);
    req.creq_out = NULL;
    req.sts_out = &small;
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_ETOOBIG);
    mg_buf_deinit(&small);
    req.sts_out = NULL;
    /* the payload header, when asked, is signed and handed back */
    req.payload_header = 1;
    ck_assert_int_eq(mg_sigv4_sign(&req, &creds, SUITE_TIME, NULL, &res), MG_OK);
    ck_assert_uint_eq(res.nheaders, 3);
    ck_assert_str_eq(res.headers[1].name, "x-amz-content-sha256");
    ck_assert_str_eq(res.headers[1].value,
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_ptr_nonnull(strstr(res.authorization, "host;x-amz-content-sha256;x-amz-date,"));
}
END_TEST

Suite *
sigv4_suite(void)
{
    Suite *s = suite_create("sigv4");
    TCase *t = tcase_create("sign");

    tcase_add_test(t, aws_suite);
    tcase_add_test(t, bedrock_converse);
    tcase_add_test(t, key_cache);
    tcase_add_test(t, segment_encoding);
    tcase_add_test(t, canonical_details);
    tcase_add_test(t, bad_inputs);
    suite_add_tcase(s, t);
    return s;
}
