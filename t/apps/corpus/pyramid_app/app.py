"""A small Pyramid app (Debian's python3-pyramid, on WebOb): a session
cookie (SignedCookieSessionFactory) with Pyramid's CSRF check and flash
messages, redirects built with route_url (so they carry SCRIPT_NAME), a
JSON view that WebOb parses (a body without CONTENT_LENGTH is read to its
end when the server sets wsgi.input_terminated), and a file served with
FileResponse (wsgi.file_wrapper when the server offers one).

    PYTHONPATH=.. python3 -m waitress --port=8080 app:application
"""
import hashlib
import json
import os

from pyramid.config import Configurator
from pyramid.csrf import get_csrf_token
from pyramid.httpexceptions import HTTPFound
from pyramid.response import FileResponse, Response
from pyramid.session import SignedCookieSessionFactory
from pyramid.view import view_config

import corpusdata

_blob = os.path.join(corpusdata.data_dir("pyramid"), "blob.bin")
if not os.path.exists(_blob):
    with open(_blob + ".tmp", "wb") as f:
        f.write(bytes(range(256)) * 4096)    # 1 MiB, every byte value
    os.replace(_blob + ".tmp", _blob)


@view_config(route_name="form", request_method="GET")
def form(request):
    flashes = request.session.pop_flash()
    return Response(json.dumps({"csrf": get_csrf_token(request),
                                "flash": flashes,
                                "items": request.session.get("items", [])}),
                    content_type="application/json", charset="utf-8")


@view_config(route_name="form", request_method="POST", require_csrf=True)
def add(request):
    items = request.session.get("items", []) + [request.POST["item"]]
    request.session["items"] = items
    request.session.flash("added %s" % request.POST["item"])
    return HTTPFound(location=request.route_url("form"))


@view_config(route_name="echo", renderer="json", request_method="POST")
def echo(request):
    data = request.json_body
    return {"keys": sorted(data), "n": len(data["values"]),
            "sum": sum(data["values"]),
            "content_length": request.content_length is not None}


@view_config(route_name="blob")
def blob(request):
    return FileResponse(_blob, request=request,
                        content_type="application/octet-stream")


@view_config(route_name="blob_sha")
def blob_sha(request):
    with open(_blob, "rb") as f:
        return Response(hashlib.sha256(f.read()).hexdigest())


with Configurator() as config:
    config.set_session_factory(SignedCookieSessionFactory("corpus-secret"))
    config.set_default_csrf_options(require_csrf=False)
    config.add_route("form", "/form")
    config.add_route("echo", "/echo")
    config.add_route("blob", "/blob")
    config.add_route("blob_sha", "/blob.sha256")
    config.scan()
    application = config.make_wsgi_app()
