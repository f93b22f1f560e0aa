from django.contrib import admin

from .models import Document


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "upload_class")
    readonly_fields = ("upload_class",)

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data.get("file")
        if upload is not None and hasattr(upload, "content_type"):
            obj.upload_class = type(upload).__name__
        super().save_model(request, obj, form, change)
