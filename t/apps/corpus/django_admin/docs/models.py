from django.db import models


class Document(models.Model):
    title = models.CharField(max_length=200)
    file = models.FileField(upload_to="docs/")
    # The class Django gave the upload: TemporaryUploadedFile when it was
    # spooled to disk, InMemoryUploadedFile when it was not.
    upload_class = models.CharField(max_length=100, blank=True)

    def __str__(self):
        return self.title
