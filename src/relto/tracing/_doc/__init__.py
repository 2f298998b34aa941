"""Private parts of ``relto.tracing.docmark``: source parsing and layout, the PDF
writer, the keyed slot plan, and the reader. Use ``relto.tracing.docmark``."""
