/*
 * test_http.c: table tests of src/pw_http.c, the HTTP syntax rules
 * mod_pywsgi applies to what an app sends (status, header names and values,
 * hop-by-hop headers, Content-Length) and to request header names
 * (HTTP_* mangling).  No Apache, no Python: built and run by
 * `make -f Makefile.apxs unit`, under AddressSanitizer and UBSan.
 *
 * Three kinds of check: hand-written rows (the cases the RFCs and PEP 3333
 * name), every single byte against a reference written from the RFC
 * grammar, and a fixed-seed run of random strings against the same
 * references (deterministic: the same inputs every run).  Ends with one
 * line "N passed, N failed"; exits 1 when anything failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pw_http.h"

static int passed, failed;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (cond) {                                                         \
            passed++;                                                       \
        }                                                                   \
        else {                                                              \
            failed++;                                                       \
            printf("not ok: " __VA_ARGS__);                                 \
            printf("\n");                                                   \
        }                                                                   \
    } while (0)

/* A printable form of a test string, for failure messages. */
static const char *show(const char *s, size_t len)
{
    static char buf[4][256];
    static int which;
    char *out = buf[which++ % 4];
    size_t i, o = 0;

    for (i = 0; i < len && o < sizeof(buf[0]) - 5; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        }
        else {
            o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- references, written from the grammars ------------------------------ */

/* RFC 9110 5.6.2: tchar */
static int ref_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int ref_token(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (!ref_tchar((unsigned char)s[i])) {
            return 0;
        }
    }
    return len > 0;
}

static int ref_value_ok(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* ---- hand-written rows ------------------------------------------------- */

/* Strings with a length: embedded NULs count. */
#define S(lit) lit, sizeof(lit) - 1

static const struct { const char *s; size_t len; int want; } token_rows[] = {
    { S("Content-Type"), 1 },
    { S("X-Custom_Header.v2"), 1 },
    { S("!#$%&'*+-.^_`|~09azAZ"), 1 },
    { S(""), 0 },
    { S("X Bad"), 0 },
    { S("X-Bad:"), 0 },
    { S("X\tTab"), 0 },
    { S("X\"Quote"), 0 },
    { S("(comment)"), 0 },
    { S("a,b"), 0 },
    { S("a;b"), 0 },
    { S("a/b"), 0 },
    { S("a\0b"), 0 },
    { S("caf\xe9"), 0 },
    { S("X-\xe2\x98\x83"), 0 },
    { S("\x7f"), 0 },
};

static const struct { const char *s; size_t len; int want; } status_rows[] = {
    { S("200 OK"), 200 },
    { S("404 Not Found"), 404 },
    { S("100 Continue"), 100 },
    { S("999 Custom"), 999 },
    { S("418 I'm a teapot"), 418 },
    { S("200 OK\tand a tab"), 200 },
    { S("200 caf\xe9"), 200 },          /* obs-text is allowed */
    { S("200 "), 200 },                 /* empty reason: RFC 9112 4 */
    { S("200"), 200 },                  /* bare code: gunicorn, mod_wsgi */
    { S("099 Low"), -1 },
    { S("000 Zero"), -1 },
    { S("20 OK"), -1 },
    { S("2000 OK"), -1 },
    { S("200OK"), -1 },
    { S(" 200 OK"), -1 },
    { S("20a OK"), -1 },
    { S("OK 200"), -1 },
    { S(""), -1 },
    { S("200 OK\r\nX-Injected: 1"), -1 },
    { S("200 OK\n"), -1 },
    { S("200 O\0K"), -1 },
    { S("200 \x7f"), -1 },
    { S("200\tOK"), -1 },
};

static const struct { const char *s; size_t len; int want; } value_rows[] = {
    { S(""), 1 },
    { S("text/plain; charset=utf-8"), 1 },
    { S(" leading and trailing space "), 1 },
    { S("tab\there"), 1 },
    { S("caf\xe9"), 1 },
    { S("a\rb"), 0 },
    { S("a\nb"), 0 },
    { S("a\r\nSet-Cookie: x=1"), 0 },
    { S("a\0b"), 0 },
    { S("\n"), 0 },
    { S("end\r"), 0 },
    { S("a\x01" "b"), 0 },
    { S("a\x1b[31m"), 0 },
    { S("a\x1f" "b"), 0 },
    { S("a\x7f"), 0 },
    { S("\t"), 1 },
    { S("a\x80\xff"), 1 },
};

static const struct { const char *s; size_t len; int want; } hop_rows[] = {
    { S("Connection"), 1 },
    { S("connection"), 1 },
    { S("CONNECTION"), 1 },
    { S("Keep-Alive"), 1 },
    { S("Proxy-Authenticate"), 1 },
    { S("Proxy-Authorization"), 1 },
    { S("TE"), 1 },
    { S("Trailers"), 1 },
    { S("Transfer-Encoding"), 1 },
    { S("transfer-encoding"), 1 },
    { S("Upgrade"), 1 },
    { S("Content-Length"), 0 },
    { S("Content-Type"), 0 },
    { S("Connections"), 0 },
    { S("Connectio"), 0 },
    { S("X-Connection"), 0 },
    { S("T"), 0 },
    { S("Trailer"), 0 },                /* the RFC 9110 name is not hop */
    { S(""), 0 },
    { S("Connection\0"), 0 },
};

/* want NULL: pw_http_cgi_name() must return 0 */
static const struct { const char *name; size_t outlen; const char *want; }
cgi_rows[] = {
    { "Host", 64, "HTTP_HOST" },
    { "X-Forwarded-For", 64, "HTTP_X_FORWARDED_FOR" },
    { "x-lower-case", 64, "HTTP_X_LOWER_CASE" },
    { "X-123", 64, "HTTP_X_123" },
    { "-", 64, "HTTP__" },
    { "X_Foo", 64, NULL },              /* would spoof X-Foo */
    { "Content_Length", 64, NULL },
    { "X.Dot", 64, NULL },
    { "X Space", 64, NULL },
    { "X:Colon", 64, NULL },
    { "caf\xe9", 64, NULL },
    { "X-\xe2\x98\x83", 64, NULL },
    { "", 64, NULL },
    { "Host", 9, "HTTP_HOST" },         /* exactly fits */
    { "Host", 8, NULL },                /* one too small */
    { "Host", 0, NULL },
};

/* want -1: not a Content-Length */
static const struct { const char *s; size_t len; long long want; } cl_rows[] = {
    { S("0"), 0 },
    { S("12"), 12 },
    { S("007"), 7 },
    { S("999999999999999999"), 999999999999999999LL },   /* 18 digits */
    { S("1000000000000000000"), -1 },   /* 19 digits: refused */
    { S(""), -1 },
    { S("-1"), -1 },
    { S("+1"), -1 },
    { S(" 1"), -1 },
    { S("1 "), -1 },
    { S("12abc"), -1 },
    { S("1,1"), -1 },
    { S("0x10"), -1 },
    { S("1\0"), -1 },
};

static const struct { const char *uri; const char *mount; int want; }
mount_rows[] = {
    { "/app", "/app", 1 },
    { "/app/", "/app", 1 },
    { "/app/x/y", "/app", 1 },
    { "/apple", "/app", 0 },
    { "/ap", "/app", 0 },
    { "/APP", "/app", 0 },          /* paths are case-sensitive */
    { "/app%2F", "/app", 0 },
    { "/", "", 1 },                 /* the root holds everything */
    { "/anything", "", 1 },
    { "", "", 1 },
    { "/a/b", "/a/b", 1 },
    { "/a/bc", "/a/b", 0 },
    { "/a", "/a/b", 0 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_rows(void)
{
    size_t i;
    char out[64];

    for (i = 0; i < N(token_rows); i++) {
        int got = pw_http_is_token(token_rows[i].s, token_rows[i].len);
        CHECK(got == token_rows[i].want, "is_token(\"%s\") = %d, want %d",
              show(token_rows[i].s, token_rows[i].len), got,
              token_rows[i].want);
    }
    for (i = 0; i < N(status_rows); i++) {
        int got = pw_http_status_code(status_rows[i].s, status_rows[i].len);
        CHECK(got == status_rows[i].want, "status_code(\"%s\") = %d, want %d",
              show(status_rows[i].s, status_rows[i].len), got,
              status_rows[i].want);
    }
    for (i = 0; i < N(value_rows); i++) {
        int got = pw_http_value_ok(value_rows[i].s, value_rows[i].len);
        CHECK(got == value_rows[i].want, "value_ok(\"%s\") = %d, want %d",
              show(value_rows[i].s, value_rows[i].len), got,
              value_rows[i].want);
    }
    for (i = 0; i < N(hop_rows); i++) {
        int got = pw_http_is_hop_by_hop(hop_rows[i].s, hop_rows[i].len);
        CHECK(got == hop_rows[i].want, "is_hop_by_hop(\"%s\") = %d, want %d",
              show(hop_rows[i].s, hop_rows[i].len), got, hop_rows[i].want);
    }
    for (i = 0; i < N(cgi_rows); i++) {
        const char *want = cgi_rows[i].want;
        size_t n;
        memset(out, '#', sizeof(out));
        n = pw_http_cgi_name(cgi_rows[i].name, out, cgi_rows[i].outlen);
        if (want == NULL) {
            CHECK(n == 0, "cgi_name(\"%s\", %zu) = %zu, want 0",
                  show(cgi_rows[i].name, strlen(cgi_rows[i].name)),
                  cgi_rows[i].outlen, n);
        }
        else {
            CHECK(n == strlen(want) && memcmp(out, want, n) == 0,
                  "cgi_name(\"%s\", %zu) = \"%s\", want \"%s\"",
                  cgi_rows[i].name, cgi_rows[i].outlen, show(out, n), want);
        }
        /* Never a byte past outlen. */
        CHECK(cgi_rows[i].outlen >= sizeof(out)
              || out[cgi_rows[i].outlen] == '#',
              "cgi_name(\"%s\", %zu) wrote past outlen",
              show(cgi_rows[i].name, strlen(cgi_rows[i].name)),
              cgi_rows[i].outlen);
    }
    for (i = 0; i < N(mount_rows); i++) {
        int got = pw_http_under_mount(mount_rows[i].uri, mount_rows[i].mount,
                                      strlen(mount_rows[i].mount));
        CHECK(got == mount_rows[i].want, "under_mount(\"%s\", \"%s\") = %d, "
              "want %d", mount_rows[i].uri, mount_rows[i].mount, got,
              mount_rows[i].want);
    }
    for (i = 0; i < N(cl_rows); i++) {
        long long got = pw_http_content_length(cl_rows[i].s, cl_rows[i].len);
        CHECK(got == cl_rows[i].want, "content_length(\"%s\") = %lld, want "
              "%lld", show(cl_rows[i].s, cl_rows[i].len), got,
              cl_rows[i].want);
    }
}

/* ---- every byte, every code --------------------------------------------- */

static void test_every_byte(void)
{
    int c, bad_token = 0, bad_value = 0, bad_reason = 0, bad_cgi = 0;
    char s[8], out[16];

    for (c = 0; c < 256; c++) {
        int want_cgi;
        s[0] = (char)c;
        if (pw_http_is_token(s, 1) != ref_tchar((unsigned char)c)) {
            bad_token++;
            printf("not ok: is_token(\"\\x%02x\") disagrees with RFC 9110\n",
                   c);
        }
        if (pw_http_value_ok(s, 1) != ref_value_ok(s, 1)) {
            bad_value++;
            printf("not ok: value_ok(\"\\x%02x\")\n", c);
        }
        /* "200 x": a reason may hold HTAB, SP, VCHAR, obs-text only. */
        memcpy(s, "200 ", 4);
        s[4] = (char)c;
        if ((pw_http_status_code(s, 5) == 200)
            != (c == '\t' || (c >= 0x20 && c != 0x7f))) {
            bad_reason++;
            printf("not ok: status_code(\"200 \\x%02x\")\n", c);
        }
        /* One-letter header names: letters, digits and '-' only. */
        if (c == 0) {
            continue;
        }
        s[0] = (char)c;
        s[1] = '\0';
        want_cgi = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                   || (c >= '0' && c <= '9') || c == '-';
        if ((pw_http_cgi_name(s, out, sizeof(out)) == 6) != want_cgi) {
            bad_cgi++;
            printf("not ok: cgi_name(\"\\x%02x\")\n", c);
        }
    }
    CHECK(bad_token == 0, "is_token: %d of 256 bytes wrong", bad_token);
    CHECK(bad_value == 0, "value_ok: %d of 256 bytes wrong", bad_value);
    CHECK(bad_reason == 0, "reason phrase: %d of 256 bytes wrong",
          bad_reason);
    CHECK(bad_cgi == 0, "cgi_name: %d of 255 bytes wrong", bad_cgi);
}

static void test_every_code(void)
{
    int code, bad = 0;
    char s[32];

    for (code = 0; code < 1000; code++) {
        int want = code >= 100 ? code : -1;
        snprintf(s, sizeof(s), "%03d Reason", code);
        if (pw_http_status_code(s, strlen(s)) != want
            || pw_http_status_code(s, 3) != want) {
            bad++;
            printf("not ok: status_code(\"%s\")\n", s);
        }
    }
    CHECK(bad == 0, "status codes 000..999: %d wrong", bad);
}

/* ---- random strings against the references ------------------------------ */

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;

static unsigned next_rand(void)
{
    /* xorshift64*: fixed seed, same sequence every run. */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (unsigned)((rng * 2685821657736338717ULL) >> 32);
}

/* Bytes biased towards the interesting ones. */
static char rand_byte(void)
{
    static const char pick[] = "aZ09-_.: \t\r\n\0\x7f\xe9\"(),;/";
    unsigned r = next_rand();

    return (r & 1) ? pick[(r >> 1) % (sizeof(pick) - 1)] : (char)(r >> 8);
}

#define RANDOM_RUNS 200000

static void test_random(void)
{
    int run, bad = 0;
    char s[40], out[64];

    for (run = 0; run < RANDOM_RUNS && bad < 10; run++) {
        size_t len = next_rand() % 24, i, n;
        long long cl;

        for (i = 0; i < len; i++) {
            s[i] = rand_byte();
        }
        s[len] = '\0';
        if (pw_http_is_token(s, len) != ref_token(s, len)) {
            bad++;
            printf("not ok: is_token(\"%s\")\n", show(s, len));
        }
        if (pw_http_value_ok(s, len) != ref_value_ok(s, len)) {
            bad++;
            printf("not ok: value_ok(\"%s\")\n", show(s, len));
        }
        /* cgi_name: 0, or HTTP_ + the name upper-cased with '-' as '_';
         * only [A-Z0-9_] ever comes out. */
        n = pw_http_cgi_name(s, out, sizeof(out));
        if (n) {
            size_t k = strlen(s);
            int ok = n == k + 5 && memcmp(out, "HTTP_", 5) == 0;
            for (i = 0; ok && i < k; i++) {
                char c = s[i], o = out[5 + i];
                ok = (c == '-' && o == '_')
                     || (c >= 'a' && c <= 'z' && o == c - 'a' + 'A')
                     || (((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                         && o == c);
            }
            if (!ok) {
                bad++;
                printf("not ok: cgi_name(\"%s\") = \"%s\"\n", show(s, len),
                       show(out, n));
            }
        }
        else {
            size_t k = strlen(s);
            int valid = k > 0;
            for (i = 0; i < k; i++) {
                char c = s[i];
                valid = valid && ((c >= 'a' && c <= 'z')
                                  || (c >= 'A' && c <= 'Z')
                                  || (c >= '0' && c <= '9') || c == '-');
            }
            if (valid) {
                bad++;
                printf("not ok: cgi_name(\"%s\") refused a valid name\n",
                       show(s, len));
            }
        }
        /* content_length: digits only, at most 18, value as strtoll. */
        cl = pw_http_content_length(s, len);
        {
            int digits = len > 0 && len <= 18;
            for (i = 0; i < len; i++) {
                digits = digits && s[i] >= '0' && s[i] <= '9';
            }
            if (digits ? cl != strtoll(s, NULL, 10) : cl != -1) {
                bad++;
                printf("not ok: content_length(\"%s\") = %lld\n",
                       show(s, len), cl);
            }
        }
    }
    CHECK(bad == 0, "random strings: %d disagreements in %d runs", bad, run);
}

int main(void)
{
    test_rows();
    test_every_byte();
    test_every_code();
    test_random();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
