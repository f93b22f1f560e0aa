"""The module both clash apps import under the same name: this one is
clash_two's (t/apps/deploy/clash_one/clash_mod.py is the other)."""

import uuid

WHO = "two"
LOADED = uuid.uuid4().hex
