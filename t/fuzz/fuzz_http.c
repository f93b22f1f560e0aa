/*
 * fuzz_http.c: libFuzzer target for src/pw_http.c, the pure HTTP checks
 * mod_pywsgi applies to what apps send, to request header names and to
 * request paths against PyWSGIScriptAlias mount points.
 *
 * Besides "no crash, no sanitizer report", each function is checked
 * against a slow reference written straight from the RFC text, so a fast
 * path that drifts from the grammar is a finding too.
 *
 *   make -f Makefile.apxs fuzz FUZZ_SECONDS=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pw_http.h"

/* RFC 9110 5.6.2 tchar, spelled out. */
static int ref_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check(int ok)
{
    if (!ok) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char out[300], *nul;
    size_t i, n;
    int tok = size > 0, code, value_ok = 1;
    long long cl;

    for (i = 0; i < size; i++) {
        tok = tok && ref_tchar(data[i]);
        /* RFC 9110 5.5: no control character but HTAB in a value. */
        if ((data[i] < 0x20 && data[i] != '\t') || data[i] == 0x7f) {
            value_ok = 0;
        }
    }
    check(pw_http_is_token(s, size) == tok);
    check(pw_http_value_ok(s, size) == value_ok);

    code = pw_http_status_code(s, size);
    if (code >= 0) {
        check(code >= 100 && code <= 999 && size >= 3);
        check(size == 3 || s[3] == ' ');
        for (i = 4; i < size; i++) {
            check(data[i] >= 0x20 || data[i] == '\t');
            check(data[i] != 0x7f);
        }
    }

    cl = pw_http_content_length(s, size);
    if (cl >= 0) {
        for (i = 0; i < size; i++) {
            check(data[i] >= '0' && data[i] <= '9');
        }
    }

    (void)pw_http_is_hop_by_hop(s, size);

    /* pw_http_cgi_name() takes a C string: up to the first NUL. */
    nul = malloc(size + 1);
    if (nul == NULL) {
        return 0;
    }
    memcpy(nul, data, size);
    nul[size] = '\0';
    n = pw_http_cgi_name(nul, out, sizeof(out));
    if (n) {
        check(n == strlen(nul) + 5 && memcmp(out, "HTTP_", 5) == 0);
        for (i = 5; i < n; i++) {
            unsigned char c = (unsigned char)out[i];
            check((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
            /* '_' only ever comes from '-': an "X_Foo" never gets here. */
            check(c != '_' || nul[i - 5] == '-');
        }
    }
    /* pw_http_under_mount(): after the first byte comes the path; the mount
     * is the path's first data[0] % size bytes (trailing '/' dropped), or,
     * when data[0] is odd, those bytes with the last one changed.
     * Reference: the path is the mount, or the mount and then '/'. */
    if (size > 1) {
        const char *uri = nul + 1;
        size_t ul = strlen(uri), ml = data[0] % size;
        char *m = strndup(uri, ml);
        if (m != NULL) {
            ml = strlen(m);
            if ((data[0] & 1) && ml > 0) {
                m[ml - 1] ^= 0x20;
            }
            while (ml > 0 && m[ml - 1] == '/') {
                m[--ml] = '\0';
            }
            check(pw_http_under_mount(uri, m, ml)
                  == (ul >= ml && memcmp(uri, m, ml) == 0
                      && (ul == ml || uri[ml] == '/')));
            free(m);
        }
    }
    free(nul);
    return 0;
}
