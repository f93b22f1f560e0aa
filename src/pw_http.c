/*
 * pw_http.c: the HTTP syntax rules mod_pywsgi enforces on what an
 * application sends and on the request header names it passes on.
 *
 * Pure functions over (pointer, length): no allocation, no Apache, no
 * Python, no locks.  t/c/ unit-tests and fuzzes them.
 */
#include <string.h>
#include "pw_http.h"

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1,
    ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1,
    ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,
    ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int pw_http_is_token(const char *s, size_t len)
{
    size_t i;

    if (len == 0) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!tchar[(unsigned char)s[i]]) {
            return 0;
        }
    }
    return 1;
}

int pw_http_status_code(const char *s, size_t len)
{
    size_t i;

    if (len < 3 || s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9'
        || s[2] < '0' || s[2] > '9') {
        return -1;
    }
    if (len > 3) {
        if (s[3] != ' ') {
            return -1;
        }
        /* RFC 9112 4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ) */
        for (i = 4; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                return -1;
            }
        }
    }
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

int pw_http_value_ok(const char *s, size_t len)
{
    size_t i;

    /* RFC 9110 5.5: field-value holds VCHAR, SP, HTAB and obs-text; CR, LF
     * and NUL could split the header, the other controls make httpd refuse
     * the response (a 500 logged as a client close) or confuse clients. */
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return 0;
        }
    }
    return 1;
}

int pw_http_is_hop_by_hop(const char *name, size_t len)
{
    /* The set wsgiref.util.is_hop_by_hop() knows, so apps that pass
     * wsgiref.validate pass here. */
    static const char *const hop[] = {
        "connection",          "keep-alive", "proxy-authenticate",
        "proxy-authorization", "te",         "trailers",
        "transfer-encoding",   "upgrade",    NULL
    };
    const char *const *h;
    size_t i;

    for (h = hop; *h; h++) {
        if (strlen(*h) != len) {
            continue;
        }
        for (i = 0; i < len; i++) {
            char c = name[i];
            if (c >= 'A' && c <= 'Z') {
                c = (char)(c - 'A' + 'a');
            }
            if (c != (*h)[i]) {
                break;
            }
        }
        if (i == len) {
            return 1;
        }
    }
    return 0;
}

size_t pw_http_cgi_name(const char *name, char *out, size_t outlen)
{
    size_t i, len = strlen(name);

    if (len == 0 || len + 5 > outlen) {
        return 0;
    }
    memcpy(out, "HTTP_", 5);
    for (i = 0; i < len; i++) {
        char c = name[i];
        if (c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        else if (c == '-') {
            c = '_';
        }
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            return 0;
        }
        out[5 + i] = c;
    }
    return len + 5;
}

long long pw_http_content_length(const char *s, size_t len)
{
    long long v = 0;
    size_t i;

    if (len == 0 || len > 18) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int pw_http_under_mount(const char *uri, const char *mount, size_t mount_len)
{
    return strncmp(uri, mount, mount_len) == 0
           && (uri[mount_len] == '\0' || uri[mount_len] == '/');
}
