"""What a person reads: the HTML report, plots, bands, summary, progress line, glossary, numbers."""
