"""A synthetic B2B SaaS world with known ground truth (the `truth` table)."""
