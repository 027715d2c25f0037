"""The engine: fat build, thin build, object diff, patch linking and the patch channel."""
