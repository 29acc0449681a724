"""One loss per module: DINO (CLS token), iBOT (masked patches), KoLeo. Temperatures and
other schedules are arguments, never state."""
