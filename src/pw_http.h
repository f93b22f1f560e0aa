/*
 * pw_http.h: pure HTTP text checks and conversions — no Apache pools, no
 * Python, so they can be unit-tested and fuzzed on their own (t/c/).
 */
#ifndef PW_HTTP_H
#define PW_HTTP_H

#include <stddef.h>

/* RFC 9110 5.6.2: tchar. */
int pw_http_is_token(const char *s, size_t len);

/*
 * A WSGI status ("200 OK", or "200"): three digits, then nothing or a space
 * and a reason phrase without control characters.  Returns the code
 * (100..999) or -1.
 */
int pw_http_status_code(const char *s, size_t len);

/* A header value an app may send: no control character but HTAB (RFC 9110
 * 5.5: 0x00-0x1F but 0x09, and 0x7F are refused). */
int pw_http_value_ok(const char *s, size_t len);

/* PEP 3333 / RFC 9110 7.6.1: headers an application must not set. */
int pw_http_is_hop_by_hop(const char *name, size_t len);

/*
 * The CGI name of a request header: "X-Forwarded-For" -> "HTTP_X_FORWARDED_FOR"
 * written to out (no terminating NUL).  Returns the length written, or 0 when
 * the name holds anything but letters, digits and '-' (so "X_Foo" cannot pass
 * for "X-Foo") or does not fit in outlen.
 */
size_t pw_http_cgi_name(const char *name, char *out, size_t outlen);

/*
 * A Content-Length value: 1*DIGIT (RFC 9110 8.6) that fits in long long.
 * Returns the value or -1.
 */
long long pw_http_content_length(const char *s, size_t len);

/*
 * Is the request path uri (a C string) at or below the mount point mount
 * (mount_len bytes, no trailing '/', "" for the root)?  Only at a segment
 * boundary: "/app" holds "/app" and "/app/x", never "/apple".
 */
int pw_http_under_mount(const char *uri, const char *mount, size_t mount_len);

#endif /* PW_HTTP_H */
