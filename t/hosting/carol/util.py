"""carol's helper module (t/hosting.t): her host is first asked by a burst
of concurrent requests, which race to make its interpreter."""
WHO = "carol"
