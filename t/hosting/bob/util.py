"""bob's helper module: alice has one of the same name (t/hosting.t)."""
WHO = "bob"
