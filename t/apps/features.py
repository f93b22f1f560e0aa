"""Apps behind Apache's own features (t/apache.t, t/conf/features.conf.in).

  text     a long, repetitive text body (for mod_deflate): 200 lines
  counted  logs one "PWFEAT-CALL <query>" line per call (print -> error log),
           so the test can count how often a cache let a request through
"""
import sys

LINE = "mod_pywsgi behind mod_deflate: the same line again and again\n"


def text(environ, start_response):
    body = (LINE * 200).encode("ascii")
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def counted(environ, start_response):
    print("PWFEAT-CALL %s" % environ.get("QUERY_STRING", ""))
    sys.stdout.flush()
    body = b"counted\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
