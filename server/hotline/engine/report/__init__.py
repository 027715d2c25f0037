"""Report: what a patch tells the user: warnings, Bevy and other framework terms, live frames, receipts and source locations."""
