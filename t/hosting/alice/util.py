"""alice's helper module: bob has one of the same name (t/hosting.t)."""
WHO = "alice"
