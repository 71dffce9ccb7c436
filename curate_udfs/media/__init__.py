"""Media I/O with PyAV's bundled FFmpeg: probe, streaming decode, H.264 transcode."""
