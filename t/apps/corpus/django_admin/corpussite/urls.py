from django.conf import settings
from django.contrib import admin
from django.urls import path, re_path
from django.views.static import serve

from docs import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("docs/<int:pk>/info", views.info),
    re_path(r"^media/(?P<path>.*)$", serve,
            {"document_root": settings.MEDIA_ROOT}),
]
