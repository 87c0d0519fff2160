"""Paper output: tables, figures and numbers written into paper/."""
