import asyncio

from django.http import HttpResponse, JsonResponse
from django.template import engines

FORM = """<!doctype html>
<form method="post" action="{{ request.path }}">{% csrf_token %}
<input name="name"><button>send</button>
</form>
"""


def index(request):
    return HttpResponse(f"django index path={request.path} "
                        f"script={request.META['SCRIPT_NAME']}\n",
                        content_type="text/plain")


def form(request):
    if request.method == "POST":
        # Only reached when CsrfViewMiddleware accepted the token.
        return JsonResponse({"name": request.POST.get("name"),
                             "method": request.method})
    template = engines["django"].from_string(FORM)
    return HttpResponse(template.render({}, request))


async def async_view(request):
    """An async view (Django >= 3.1), served through pwsite.asgi (t/asgi.t)."""
    await asyncio.sleep(0)
    return HttpResponse(f"async django n={request.GET.get('n')} "
                        f"path={request.path}", content_type="text/plain")
