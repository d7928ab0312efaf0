"""The client simulator: aiortc participants that join like a browser would, their synthetic
pictures and tones, and rehearsal scenarios. Used by the tests, the benchmarks and the
`hallbridge simulate` / `hallbridge rehearse` commands; needs the `sim` extra (Pillow, rich)."""
