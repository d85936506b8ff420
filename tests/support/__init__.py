"""Test helpers shared by the suites: fakes for what cannot run here, and seeding."""
