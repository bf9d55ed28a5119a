"""Pure image and geometry code: numpy and OpenCV only; no model runtime, no I/O, no web."""
