"""Clinical-workflow rules: candidacy, screening, drug library, titration, triage, wallet card."""
