"""What a Python process offers an app, used the way real apps use it
(plain WSGI, no framework):

  /subprocess  runs `sys.executable -c ...` (as multiprocessing, pip, Celery,
               many CLIs wrapped in web UIs do): sys.executable must be a
               Python;
  /numpy       numpy linear algebra (C extension, releases the GIL);
  /pillow      draws, resizes and encodes a PNG with Pillow;
  /asyncio     asyncio.run() inside the request (a fresh event loop in the
               request's thread), gathering several tasks;
  /stdio       what libraries do with sys.stdout / sys.stderr: .buffer,
               .encoding, .isatty(), .fileno() (int, or io's
               UnsupportedOperation when there is no descriptor).
Each answers JSON that is the same under every server.

    PYTHONPATH=.. python3 -m waitress --port=8080 app:application
"""
import asyncio
import hashlib
import io
import json
import subprocess
import sys


def _subprocess(environ):
    # The child must be the same Python in the same environment (a venv's
    # sys.executable is the venv's python, whose sys.prefix is the venv).
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys, json; print(json.dumps([sys.version_info[:2],"
         " sys.prefix, sys.stdin.read().upper()]))"],
        input="from the parent", capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise RuntimeError("%s -c exited %d: %s" % (
            sys.executable, proc.returncode, proc.stderr[-300:]))
    version, prefix, echoed = json.loads(proc.stdout)
    return {"same_version": version == list(sys.version_info[:2]),
            "same_prefix": prefix == sys.prefix, "echoed": echoed}


def _numpy(environ):
    import numpy as np
    rng = np.random.default_rng(5)
    a = rng.standard_normal((120, 120))
    inv = np.linalg.inv(a)
    ident = a @ inv
    return {"identity": bool(np.allclose(ident, np.eye(120))),
            "trace": round(float(np.trace(ident)), 6),
            "svd0": round(float(np.linalg.svd(a, compute_uv=False)[0]), 6)}


def _pillow(environ):
    from PIL import Image, ImageDraw, ImageFilter
    img = Image.new("RGB", (320, 200), (10, 20, 30))
    draw = ImageDraw.Draw(img)
    for i in range(20):
        draw.ellipse((i * 12, i * 7, i * 12 + 60, i * 7 + 40),
                     outline=(i * 12, 255 - i * 10, 128))
    img = img.filter(ImageFilter.GaussianBlur(2)).resize((160, 100))
    out = io.BytesIO()
    img.save(out, "PNG")
    back = Image.open(io.BytesIO(out.getvalue()))
    return {"size": list(back.size),
            "pixels_sha256": hashlib.sha256(back.tobytes()).hexdigest()}


def _asyncio(environ):
    async def work(i):
        await asyncio.sleep(0.01 * (3 - i))
        return i * i

    async def main():
        return await asyncio.gather(*(work(i) for i in range(3)))

    return {"results": asyncio.run(main())}


def _stdio(environ):
    out = {}
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        info = {"encoding_ok": isinstance(getattr(stream, "encoding", None),
                                          str),
                "isatty": stream.isatty()}
        # A library writing bytes (click.echo, tqdm, ...).
        stream.buffer.write(b"corpus: bytes through sys.%s.buffer\n"
                            % name.encode())
        stream.buffer.flush()
        try:
            info["fileno"] = isinstance(stream.fileno(), int)
        except io.UnsupportedOperation:
            info["fileno"] = "unsupported"
        out[name] = info
    # Under a server whose sys.stdout is a real descriptor fileno() is an int;
    # without one io.UnsupportedOperation is the documented answer: both fine.
    for info in out.values():
        info["fileno"] = info["fileno"] in (True, "unsupported")
        info["isatty"] = False if info["isatty"] is False else "tty?"
    return out


ROUTES = {"/subprocess": _subprocess, "/numpy": _numpy, "/pillow": _pillow,
          "/asyncio": _asyncio, "/stdio": _stdio}


def application(environ, start_response):
    handler = ROUTES.get(environ.get("PATH_INFO", ""))
    if handler is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    body = json.dumps(handler(environ)).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
