"""The module both clash apps import under the same name: this one is
clash_one's (t/apps/deploy/clash_two/clash_mod.py is the other)."""

import uuid

WHO = "one"
LOADED = uuid.uuid4().hex
