import hashlib

from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from .models import Document


@staff_member_required
def info(request, pk):
    doc = get_object_or_404(Document, pk=pk)
    digest = hashlib.sha256()
    with doc.file.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return JsonResponse({"title": doc.title, "size": doc.file.size,
                         "sha256": digest.hexdigest(),
                         "upload_class": doc.upload_class,
                         "url": doc.file.url})
